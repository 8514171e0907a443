//! Returns: the payee gives back some or all of a settled payment,
//! within the return window, never more than the original in total.

use crate::digest::content_digest_parts;
use crate::effects::{Effect, ReturnNotice};
use crate::op::Submitted;
use crate::payments::{Outcome, Transfer};
use crate::{Engine, Event, Output};
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
    pub(crate) fn return_payment(&mut self, now: TimestampMs, order: ReturnOrder, out: &mut Output) -> Submitted {
        debug_assert_eq!(order.id.kind(), IdKind::Return);
        let digest = order.digest();
        if let Some(existing) = self.transfers.get(&order.id) {
            return self.resubmission(existing, digest);
        }
        let original = match self.transfers.get(&order.original) {
            // A participant learns nothing about payments it did not receive.
            Some(t) if t.payee.participant == order.returner && t.id.kind() == IdKind::Payment => t,
            _ => {
                // Nothing to link to: the refusal is not recorded, so the id
                // can be used once the returner names the right original.
                return Submitted::Final(Outcome::Rejected { reason: ReasonCode::OriginalNotFound });
            }
        };
        let (payer, payee) = (original.payee, original.payer);
        let reason = self.check_return(now, &order, original);
        if let Some(reason) = reason {
            self.record(
                Event::Refused {
                    id: order.id,
                    payer,
                    payee,
                    amount: order.amount,
                    digest,
                    reason,
                    at: now,
                    original: Some(order.original),
                },
                out,
            );
            return Submitted::Final(Outcome::Rejected { reason });
        }
        self.record(
            Event::ReturnSettled {
                id: order.id,
                original: order.original,
                payer,
                payee,
                amount: order.amount,
                digest,
                reason: order.reason,
                at: now,
            },
            out,
        );
        out.effects.push(Effect::Returned(Box::new(ReturnNotice {
            to: payee.participant,
            id: order.id,
            original: order.original,
            amount: order.amount,
            reason: order.reason,
            at: now,
        })));
        Submitted::Final(Outcome::Settled { at: now })
    }

    pub(crate) fn check_return(
        &self,
        now: TimestampMs,
        order: &ReturnOrder,
        original: &Transfer,
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
        match original.returned.checked_add(order.amount) {
            Some(total) if total <= original.amount => {}
            _ => return Some(ReasonCode::ReturnExceedsOriginal),
        }
        if returner.available() < order.amount {
            return Some(ReasonCode::InsufficientLiquidity);
        }
        None
    }
}
