//! Recalls: the payer's participant asks the payee's participant to give a
//! settled payment back (ISO 20022's camt.056 "FI to FI payment
//! cancellation request"; SEPA's recall). The payee's participant answers
//! by returning it (an ordinary return of the original, which accepts the
//! recall) or by refusing with a reason (camt.029); a recall nobody
//! answered by its deadline closes as expired (NOAS). The switch checks
//! that the recall is the payer's to make, keeps its state durably,
//! tells the payee's participant on its inbox (again each time an inbox
//! opens, while the recall is open) and tells the payer's participant how
//! it closed.
//!
//! One recall per payment: asking again with the same reason and text
//! answers the same recall (a retry is safe); asking with other content
//! is refused. Closed recalls are kept until their payment's return
//! window ends, after which no return or recall of it can be made.

use crate::effects::Effect;
use crate::payments::Transfer;
use crate::{ArchivedTransfer, Engine, Event, NotHeld, Output};
use ponte_domain::{
    Amount, EndToEndId, IdKind, ParticipantId, ParticipantStatus, ReasonCode, TimestampMs, TransferState,
};
use serde::{Deserialize, Serialize};

/// Longest free text of a recall, in characters (camt.056 `AddtlInf` is 105).
pub const RECALL_TEXT_LEN_MAX: usize = 105;

/// A recall a payer's participant asked for.
#[derive(Debug, Clone)]
pub struct RecallOrder {
    /// The caller: the participant that sent the original payment.
    pub requester: ParticipantId,
    pub original: EndToEndId,
    /// Why ([`ReasonCode::is_recall_reason`]).
    pub reason: ReasonCode,
    /// For the payee's participant, at most [`RECALL_TEXT_LEN_MAX`] characters.
    pub text: String,
}

/// Where a recall stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecallState {
    /// Waiting for the payee's participant.
    Open,
    /// The payee's participant returned (part of) the payment.
    Accepted { return_id: EndToEndId, amount: Amount },
    /// The payee's participant refused, for `reason`.
    Refused { reason: ReasonCode },
    /// Nobody answered before the deadline.
    Expired,
}

/// A recall, as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recall {
    pub original: EndToEndId,
    /// The original's payer participant, who asked.
    pub requester: ParticipantId,
    /// The original's payee participant, who answers.
    pub responder: ParticipantId,
    /// What was left of the original (not yet returned) when asked.
    pub amount: Amount,
    pub reason: ReasonCode,
    pub text: String,
    pub opened_at: TimestampMs,
    /// Answer before this: the recall deadline, or the end of the
    /// original's return window if that comes first.
    pub answer_by: TimestampMs,
    pub state: RecallState,
    pub closed_at: Option<TimestampMs>,
    /// When the original's return window ends: the recall is forgotten then.
    pub keep_until: TimestampMs,
}

impl Recall {
    pub fn is_open(&self) -> bool {
        self.state == RecallState::Open
    }
}

/// Why a recall, or a refusal of one, was not taken. Nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecallError {
    /// The original left memory: read it from the archive and ask again with it.
    #[error("the original is not in memory")]
    NotHeld(NotHeld),
    #[error("no settled payment {0} sent by this participant")]
    OriginalNotFound(EndToEndId),
    #[error("payment {0} settled longer ago than the return window: it can no longer be returned")]
    WindowExpired(EndToEndId),
    #[error("payment {0} was already returned in full")]
    AlreadyReturned(EndToEndId),
    #[error("the participant is not active")]
    Suspended,
    #[error("payment {0} was already recalled, with another reason or text")]
    AlreadyRecalled(EndToEndId),
    #[error("no recall of payment {0} sent to this participant")]
    NoRecall(EndToEndId),
    #[error("the recall of payment {0} is already closed")]
    Closed(EndToEndId),
}

impl Engine {
    /// Opens a recall of a settled payment the requester sent (its
    /// original in memory, or `archived` as the archive holds it).
    pub(crate) fn recall(
        &mut self,
        now: TimestampMs,
        order: RecallOrder,
        archived: Option<&ArchivedTransfer>,
        out: &mut Output,
    ) -> Result<Recall, RecallError> {
        debug_assert!(order.reason.is_recall_reason());
        if let Some(existing) = self.recalls.get(&order.original) {
            if existing.requester != order.requester {
                return Err(RecallError::OriginalNotFound(order.original));
            }
            if existing.reason == order.reason && existing.text == order.text {
                return Ok(existing.clone());
            }
            return Err(RecallError::AlreadyRecalled(order.original));
        }
        let (original, late): (&Transfer, Amount) = match (self.transfers.get(&order.original), archived) {
            (Some(t), _) => (t, Amount::ZERO),
            (None, Some(a)) if a.transfer.id == order.original => {
                (&a.transfer, self.late_returns.returned(&order.original))
            }
            (None, _) => return Err(RecallError::NotHeld(self.not_held())),
        };
        // A participant learns nothing about payments it did not send.
        if original.payer.participant != order.requester
            || original.id.kind() != IdKind::Payment
            || original.state != TransferState::Settled
        {
            return Err(RecallError::OriginalNotFound(order.original));
        }
        match self.participants.get(&order.requester) {
            Some(p) if p.status == ParticipantStatus::Active => {}
            _ => return Err(RecallError::Suspended),
        }
        let settled_at = original.settled_at.unwrap_or(original.created_at);
        let keep_until = settled_at.saturating_add(self.config.return_window_ms);
        if now > keep_until {
            return Err(RecallError::WindowExpired(order.original));
        }
        let returned = original.returned.checked_add(late).expect("returned overflow");
        let amount = original.amount.checked_sub(returned).expect("returned at most the original");
        if amount == Amount::ZERO {
            return Err(RecallError::AlreadyReturned(order.original));
        }
        let recall = Recall {
            original: order.original,
            requester: order.requester,
            responder: original.payee.participant,
            amount,
            reason: order.reason,
            text: order.text,
            opened_at: now,
            answer_by: now.saturating_add(self.config.recall_answer_ms).min(keep_until),
            state: RecallState::Open,
            closed_at: None,
            keep_until,
        };
        self.record(Event::RecallOpened { recall: recall.clone() }, out);
        out.effects.push(Effect::Recall(Box::new(recall.clone())));
        Ok(recall)
    }

    /// The payee's participant refuses an open recall sent to it.
    /// Refusing again for the same reason answers the same recall.
    pub(crate) fn refuse_recall(
        &mut self,
        now: TimestampMs,
        responder: ParticipantId,
        original: EndToEndId,
        reason: ReasonCode,
        out: &mut Output,
    ) -> Result<Recall, RecallError> {
        debug_assert!(reason.is_recall_refusal());
        let recall = match self.recalls.get(&original) {
            Some(r) if r.responder == responder => r,
            _ => return Err(RecallError::NoRecall(original)),
        };
        match recall.state {
            RecallState::Open => {}
            RecallState::Refused { reason: given } if given == reason => return Ok(recall.clone()),
            _ => return Err(RecallError::Closed(original)),
        }
        self.record(Event::RecallClosed { original, state: RecallState::Refused { reason }, at: now }, out);
        let recall = self.recalls.get(&original).expect("just closed").clone();
        out.effects.push(Effect::Recall(Box::new(recall.clone())));
        Ok(recall)
    }

    /// The recall of `original`, if `caller` is one of its two sides.
    pub fn recall_for(&self, caller: ParticipantId, original: &EndToEndId) -> Option<&Recall> {
        self.recalls.get(original).filter(|r| r.requester == caller || r.responder == caller)
    }

    /// Open recalls sent to `responder`, in original id order: told again
    /// each time one of its inboxes opens.
    pub(crate) fn remind_recalls(&self, responder: ParticipantId, out: &mut Output) {
        let open = self.recalls.values().filter(|r| r.responder == responder && r.is_open());
        out.effects.extend(open.map(|r| Effect::Recall(Box::new(r.clone()))));
    }

    /// Expires the open recalls past their deadline and forgets the closed
    /// ones past their payment's return window. Looks only when one is due.
    pub(crate) fn expire_recalls(&mut self, now: TimestampMs, out: &mut Output) {
        if now < self.recalls_due {
            return;
        }
        let expired: Vec<EndToEndId> =
            self.recalls.values().filter(|r| r.is_open() && r.answer_by <= now).map(|r| r.original).collect();
        for original in expired {
            self.record(Event::RecallClosed { original, state: RecallState::Expired, at: now }, out);
            let recall = self.recalls.get(&original).expect("just expired").clone();
            out.effects.push(Effect::Recall(Box::new(recall)));
        }
        if self.recalls.values().any(|r| !r.is_open() && r.keep_until < now) {
            self.record(Event::RecallsForgotten { before: now }, out);
        }
        self.recalls_due = self.next_recall_due();
    }

    /// When [`Engine::expire_recalls`] next has something to do.
    pub(crate) fn next_recall_due(&self) -> TimestampMs {
        let due = |r: &Recall| if r.is_open() { r.answer_by } else { r.keep_until.saturating_add(1) };
        self.recalls.values().map(due).min().unwrap_or(i64::MAX)
    }

    pub(crate) fn apply_recall_opened(&mut self, recall: &Recall) {
        self.recalls_due = self.recalls_due.min(recall.answer_by);
        let previous = self.recalls.insert(recall.original, recall.clone());
        assert!(previous.is_none(), "payment {} recalled twice", recall.original);
    }

    pub(crate) fn apply_recall_closed(&mut self, original: EndToEndId, state: RecallState, at: TimestampMs) {
        let recall = self.recalls.get_mut(&original).expect("closed recall exists");
        assert!(recall.is_open(), "recall of {original} closed twice");
        recall.state = state;
        recall.closed_at = Some(at);
        self.recalls_due = self.recalls_due.min(recall.keep_until.saturating_add(1));
    }

    /// A return of `original` settled: an open recall of it is accepted.
    pub(crate) fn accept_recall(
        &mut self,
        original: EndToEndId,
        return_id: EndToEndId,
        amount: Amount,
        at: TimestampMs,
    ) {
        if let Some(recall) = self.recalls.get_mut(&original).filter(|r| r.is_open()) {
            recall.state = RecallState::Accepted { return_id, amount };
            recall.closed_at = Some(at);
            self.recalls_due = self.recalls_due.min(recall.keep_until.saturating_add(1));
        }
    }

    pub(crate) fn apply_recalls_forgotten(&mut self, before: TimestampMs) {
        self.recalls.retain(|_, r| r.is_open() || r.keep_until >= before);
    }

    /// Recalls held (open and closed).
    pub fn recall_count(&self) -> usize {
        self.recalls.len()
    }
}
