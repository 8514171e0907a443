//! The transfer state machine: one enum, one transition function.
//!
//! ```text
//!   RECEIVED --reserve--> RESERVED --accept--> SETTLED
//!      |                     |
//!      +------reject-------> REJECTED <--reject/timeout--+
//! ```
//! A return is a transfer of its own that goes RECEIVED -> SETTLED or
//! RECEIVED -> REJECTED (it needs no payee answer); a settled payment may have
//! any number of returns, together never more than its amount.

/// A payee's answer to a payment pushed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// Refuse with a payee reason code (AC03, AC04, AC06, AG03, BE01, DS04).
    Reject(crate::ReasonCode),
}

/// What one side of a transfer may see of it: the engine's answer to a
/// status or reconciliation query, carried on the wire as `TransferStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferView {
    pub id: crate::EndToEndId,
    pub state: TransferState,
    /// Why it was rejected (set only when `state` is `Rejected`).
    pub reason: Option<crate::ReasonCode>,
    pub payer: crate::Account,
    pub payee: crate::Account,
    pub amount: crate::Amount,
    pub created_at: crate::TimestampMs,
    pub settled_at: Option<crate::TimestampMs>,
    /// The sum of the settled returns of this payment.
    pub returned: crate::Amount,
    /// For a return: the payment it returns.
    pub original: Option<crate::EndToEndId>,
}

/// Where a transfer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TransferState {
    /// Validated, not yet holding liquidity. Never outlives one engine step.
    Received,
    /// The payer's liquidity is reserved; the payee has been asked.
    Reserved,
    /// Final: positions moved.
    Settled,
    /// Final: nothing moved, a reason says why.
    Rejected,
}

/// What can happen to a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEvent {
    Reserve,
    /// The payee accepted (or, for a return, the switch settled it directly).
    Settle,
    Reject,
}

impl TransferState {
    /// The one place that decides which moves are legal. `None` means the
    /// event does not apply in this state (a late or duplicate answer).
    pub const fn next(self, event: TransferEvent) -> Option<TransferState> {
        use TransferEvent as E;
        use TransferState as S;
        match (self, event) {
            (S::Received, E::Reserve) => Some(S::Reserved),
            (S::Received, E::Reject) | (S::Reserved, E::Reject) => Some(S::Rejected),
            (S::Received, E::Settle) | (S::Reserved, E::Settle) => Some(S::Settled),
            _ => None,
        }
    }

    pub const fn is_final(self) -> bool {
        matches!(self, TransferState::Settled | TransferState::Rejected)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TransferState::Received => "RECEIVED",
            TransferState::Reserved => "RESERVED",
            TransferState::Settled => "SETTLED",
            TransferState::Rejected => "REJECTED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_accept_no_event() {
        for state in [TransferState::Settled, TransferState::Rejected] {
            for event in [TransferEvent::Reserve, TransferEvent::Settle, TransferEvent::Reject] {
                assert_eq!(state.next(event), None, "{state:?} {event:?}");
            }
        }
        assert_eq!(TransferState::Reserved.next(TransferEvent::Reserve), None);
    }
}
