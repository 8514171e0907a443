//! What the engine tells payees, once the journal is durable.

use ponte_domain::{Account, Amount, EndToEndId, ParticipantId, ReasonCode, TimestampMs};

/// Work for the payee side, to carry out once the journal is durable: what
/// a participant is told on its inbox.
#[derive(Debug)]
pub enum Effect {
    /// Push an incoming payment to the payee's inbox.
    Deliver(Box<Delivery>),
    /// Tell the payee a payment is settled: it may credit its customer.
    Settled { payee: ParticipantId, id: EndToEndId, amount: Amount, at: TimestampMs },
    /// Tell the payee a payment it was asked about is not going ahead.
    Cancelled { payee: ParticipantId, id: EndToEndId, reason: ReasonCode },
    /// Tell the original payer a return of its payment is settled.
    Returned(Box<ReturnNotice>),
    /// A recall opened (tell its responder, the payee's participant) or
    /// closed (tell its requester, the payer's participant).
    Recall(Box<crate::Recall>),
}

impl Effect {
    /// The participant told.
    pub fn participant(&self) -> ParticipantId {
        match self {
            Effect::Deliver(delivery) => delivery.payee.participant,
            Effect::Settled { payee, .. } | Effect::Cancelled { payee, .. } => *payee,
            Effect::Returned(notice) => notice.to,
            Effect::Recall(recall) if recall.is_open() => recall.responder,
            Effect::Recall(recall) => recall.requester,
        }
    }
}

#[derive(Debug)]
pub struct Delivery {
    pub id: EndToEndId,
    pub payer: Account,
    pub payee: Account,
    pub amount: Amount,
    pub remittance: String,
    pub deadline: TimestampMs,
}

#[derive(Debug)]
pub struct ReturnNotice {
    pub to: ParticipantId,
    pub id: EndToEndId,
    pub original: EndToEndId,
    pub amount: Amount,
    pub reason: ReasonCode,
    pub at: TimestampMs,
}
