//! Returns: the payee gives back some or all of a settled payment,
//! within the return window, never more than the original in total.

use crate::digest::content_digest_parts;
use crate::effects::{Effect, ReturnNotice};
use crate::op::Submitted;
use crate::payments::{Outcome, Transfer};
use crate::{ArchivedTransfer, Engine, Event, Output};
use ponte_domain::{
    Amount, EndToEndId, IdKind, ParticipantId, ParticipantStatus, ReasonCode, TimestampMs, TransferState,
};

/// A return the original payee asked for.
#[derive(Debug, Clone)]
pub struct ReturnOrder {
    /// The caller: the participant returning the money.
    pub returner: ParticipantId,
    pub id: EndToEndId,
    pub original: EndToEndId,
    pub amount: Amount,
    pub reason: ReasonCode,
    pub remittance: String,
}

impl ReturnOrder {
    pub fn digest(&self) -> u128 {
        content_digest_parts(&[
            &self.returner.code().to_le_bytes(),
            self.original.as_str().as_bytes(),
            &self.amount.minor().to_le_bytes(),
            &self.reason.number().to_le_bytes(),
            self.remittance.as_bytes(),
        ])
    }
}

impl Engine {
    pub(crate) fn return_payment(
        &mut self,
        now: TimestampMs,
        order: ReturnOrder,
        archived: Option<&ArchivedTransfer>,
        out: &mut Output,
    ) -> Submitted {
        debug_assert_eq!(order.id.kind(), IdKind::Return);
        let digest = order.digest();
        if let Some(existing) = self.transfers.lookup(&order.id) {
            return self.resubmission(existing, digest);
        }
        // The original: in memory, or as archived plus what was returned since.
        let (original, late) = match (self.transfers.get(&order.original), archived) {
            (Some(t), _) => (t, None),
            (None, Some(a)) if a.transfer.id == order.original => {
                (&a.transfer, Some(self.late_returns.returned(&order.original)))
            }
            (None, _) => return Submitted::NotHeld(self.not_held()),
        };
        // A participant learns nothing about payments it did not receive.
        if original.payee.participant != order.returner || original.id.kind() != IdKind::Payment {
            // Nothing to link to: the refusal is not recorded, so the id
            // can be used once the returner names the right original.
            return Submitted::Final(Outcome::Rejected { reason: ReasonCode::OriginalNotFound });
        }
        let (payer, payee) = (original.payee, original.payer);
        let returned = original.returned.checked_add(late.unwrap_or(Amount::ZERO)).expect("returned overflow");
        let late = late.map(|_| {
            let settled_at = original.settled_at.unwrap_or(original.created_at);
            (original.cycle, settled_at.saturating_add(self.config.return_window_ms))
        });
        if let Some(reason) = self.check_return(now, &order, original, returned) {
            let original = Some(order.original);
            let (id, amount) = (order.id, order.amount);
            self.record(Event::Refused { id, payer, payee, amount, digest, reason, at: now, original }, out);
            return Submitted::Final(Outcome::Rejected { reason });
        }
        let (id, original, amount, reason) = (order.id, order.original, order.amount, order.reason);
        let event = match late {
            None => Event::ReturnSettled { id, original, payer, payee, amount, digest, reason, at: now },
            Some((original_cycle, closes_at)) => Event::LateReturnSettled {
                id,
                original,
                payer,
                payee,
                amount,
                digest,
                reason,
                at: now,
                closes_at,
                original_cycle,
            },
        };
        self.record(event, out);
        let notice = ReturnNotice { to: payee.participant, id, original, amount, reason, at: now };
        out.effects.push(Effect::Returned(Box::new(notice)));
        // The return that accepted a recall tells its requester so, after
        // the return itself (a pacs.004, then the camt.029).
        let accepted =
            |r: &&crate::Recall| matches!(r.state, crate::RecallState::Accepted { return_id, .. } if return_id == id);
        if let Some(recall) = self.recalls.get(&original).filter(accepted) {
            out.effects.push(Effect::Recall(Box::new(recall.clone())));
        }
        Submitted::Final(Outcome::Settled { at: now })
    }

    /// The checks of a return against its original, of which `returned`
    /// (in memory and archived) was already given back.
    pub(crate) fn check_return(
        &self,
        now: TimestampMs,
        order: &ReturnOrder,
        original: &Transfer,
        returned: Amount,
    ) -> Option<ReasonCode> {
        let returner = match self.participants.get(&order.returner) {
            Some(p) if p.status == ParticipantStatus::Active => p,
            _ => return Some(ReasonCode::PayerSuspended),
        };
        if original.state != TransferState::Settled {
            return Some(ReasonCode::OriginalNotFound);
        }
        let settled_at = original.settled_at.unwrap_or(original.created_at);
        if now.saturating_sub(settled_at) > self.config.return_window_ms {
            return Some(ReasonCode::ReturnWindowExpired);
        }
        match returned.checked_add(order.amount) {
            Some(total) if total <= original.amount => {}
            _ => return Some(ReasonCode::ReturnExceedsOriginal),
        }
        if returner.available() < order.amount {
            return Some(ReasonCode::InsufficientLiquidity);
        }
        None
    }
}
