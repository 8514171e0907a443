//! Payments: submission, the payee's answer, deadlines, and what either
//! side may see of a transfer.

use crate::digest::content_digest_parts;
use crate::effects::{Delivery, Effect};
use crate::op::Submitted;
use crate::table::Held;
use crate::{Engine, Event, Output};
use ponte_directory::keys::Key;
use ponte_directory::lookups::EndUser;
use ponte_domain::{
    Account, Amount, Decision, EndToEndId, IdKind, ParticipantId, ParticipantStatus, ReasonCode, TimestampMs,
    TransferState, TransferView,
};

/// A payment or return as the engine keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    pub id: EndToEndId,
    pub payer: Account,
    pub payee: Account,
    pub amount: Amount,
    pub state: TransferState,
    pub reason: Option<ReasonCode>,
    pub created_at: TimestampMs,
    pub settled_at: Option<TimestampMs>,
    /// When the payee's answer is due (payments in `Reserved`).
    pub deadline: TimestampMs,
    /// Hash of the content, to tell a resubmission from a modified reuse of the id.
    pub digest: u128,
    /// Total returned so far (payments).
    pub returned: Amount,
    /// The settlement cycle the transfer landed in (0 until settled).
    pub cycle: u32,
}

impl Transfer {
    /// A transfer recorded at `at` in `state`: no reason, not settled, not
    /// returned, in no cycle, its deadline `at` (callers set what differs).
    pub(crate) fn new(
        id: EndToEndId,
        payer: Account,
        payee: Account,
        amount: Amount,
        digest: u128,
        at: TimestampMs,
        state: TransferState,
    ) -> Transfer {
        Transfer {
            id,
            payer,
            payee,
            amount,
            state,
            reason: None,
            created_at: at,
            settled_at: None,
            deadline: at,
            digest,
            returned: Amount::ZERO,
            cycle: 0,
        }
    }
}

/// A payment the payer asked for. The payer participant was authenticated
/// by the caller and is `payer.participant`.
#[derive(Debug, Clone)]
pub struct PaymentOrder {
    pub id: EndToEndId,
    pub payer: Account,
    /// The payee's account; [`Account::unresolved`] when `payee_key` names it.
    pub payee: Account,
    /// Pay a directory key instead of an account: the engine resolves it.
    pub payee_key: Option<Key>,
    /// The end user who looked the key up: gets the lookup's token back.
    pub lookup_by: Option<EndUser>,
    pub amount: Amount,
    pub remittance: String,
}

impl PaymentOrder {
    pub fn digest(&self) -> u128 {
        content_digest_parts(&[
            &self.payer.participant.code().to_le_bytes(),
            &self.payer.branch.to_le_bytes(),
            self.payer.number().as_bytes(),
            &[self.payer.kind as u8],
            &self.payee.participant.code().to_le_bytes(),
            &self.payee.branch.to_le_bytes(),
            self.payee.number().as_bytes(),
            &[self.payee.kind as u8],
            &self.amount.minor().to_le_bytes(),
            self.remittance.as_bytes(),
            self.payee_key.as_ref().map_or(&[][..], |k| k.value().as_bytes()),
        ])
    }
}

/// The final outcome of a payment or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Settled { at: TimestampMs },
    Rejected { reason: ReasonCode },
}

/// Counters of answers that changed nothing (exposed for operators).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnswerStats {
    /// Answers for a payment that was already final (late or repeated).
    pub late_or_duplicate: u64,
    /// Answers for an id the participant was never asked about.
    pub unknown: u64,
}

impl Engine {
    /// Rejects every reserved payment whose payee deadline is at or before `now`.
    pub fn expire(&mut self, now: TimestampMs, out: &mut Output) {
        self.ensure_cycle_open(now, out);
        self.close_on_schedule(now, out);
        if now >= self.claim_deadline {
            self.expire_claims(now, out);
            self.claim_deadline = self.directory.claims.earliest_deadline().unwrap_or(i64::MAX);
        }
        if now >= self.claims_forget_at {
            self.forget_claims(now, out);
        }
        self.expire_recalls(now, out);
        while let Some((deadline, position)) = self.deadlines.pop_due(now, &self.transfers) {
            let transfer = self.transfers.at(position);
            debug_assert!(transfer.state == TransferState::Reserved && transfer.deadline == deadline);
            let (id, payee) = (transfer.id, transfer.payee.participant);
            self.record(Event::Rejected { id, reason: ReasonCode::PayeeTimeout, at: now }, out);
            out.finals.push((id, Outcome::Rejected { reason: ReasonCode::PayeeTimeout }));
            out.effects.push(Effect::Cancelled { payee, id, reason: ReasonCode::PayeeTimeout });
        }
        self.evict(now, out);
    }

    /// Forgets the claims closed longer ago than the retention (they then
    /// answer as unknown), and notes when the next one will be due: the
    /// longest-closed claim left, or one closing from now on; looked at
    /// no more than once a minute (a look reads every claim).
    fn forget_claims(&mut self, now: TimestampMs, out: &mut Output) {
        let retention = self.config.retention_ms();
        let before = now.saturating_sub(retention);
        let mut earliest = self.directory.claims.earliest_closed();
        if earliest.is_some_and(|closed| closed < before) {
            self.record(Event::ClaimsForgotten { before }, out);
            earliest = self.directory.claims.earliest_closed();
        }
        let next = earliest.unwrap_or(now).saturating_add(retention);
        self.claims_forget_at = next.max(now.saturating_add(60_000));
    }

    pub(crate) fn submit(&mut self, now: TimestampMs, mut order: PaymentOrder, out: &mut Output) -> Submitted {
        debug_assert_eq!(order.id.kind(), IdKind::Payment);
        let digest = order.digest();
        if let Some(existing) = self.transfers.lookup(&order.id) {
            return self.resubmission(existing, digest);
        }
        // An id older than the duplicate window is refused without a
        // record: it always will be, and a record would shadow the archived
        // transfer of the same id.
        if order.id.created_at_ms().unwrap_or(i64::MIN) < now.saturating_sub(self.config.id_age_ms_max) {
            return Submitted::Final(Outcome::Rejected { reason: ReasonCode::IdTimestampOutOfRange });
        }
        let mut reason = None;
        if let Some(key) = &order.payee_key {
            match self.directory.registry.get(key) {
                Some(entry) => order.payee = entry.account,
                None => reason = Some(ReasonCode::UnknownKey),
            }
            if let Some(user) = &order.lookup_by {
                self.directory.lookups.give_back(user, now);
            }
        }
        let reason = reason.or_else(|| self.check_payment(now, &order));
        if let Some(reason) = reason {
            self.record(
                Event::Refused {
                    id: order.id,
                    payer: order.payer,
                    payee: order.payee,
                    amount: order.amount,
                    digest,
                    reason,
                    at: now,
                    original: None,
                },
                out,
            );
            return Submitted::Final(Outcome::Rejected { reason });
        }
        let deadline = now.saturating_add(self.config.payee_timeout_ms);
        self.record(
            Event::Reserved {
                id: order.id,
                payer: order.payer,
                payee: order.payee,
                amount: order.amount,
                digest,
                at: now,
                deadline,
                remittance: &order.remittance,
            },
            out,
        );
        out.effects.push(Effect::Deliver(Box::new(Delivery {
            id: order.id,
            payer: order.payer,
            payee: order.payee,
            amount: order.amount,
            remittance: order.remittance,
            deadline,
        })));
        Submitted::Pending
    }

    /// The answer to an id submitted again: the first submission's, if the
    /// content is the same.
    pub(crate) fn resubmission(&self, existing: Held<'_>, digest: u128) -> Submitted {
        let existing = match existing {
            Held::Full(t) => t,
            Held::Seen(seen) if !seen.same_content(digest) => {
                return Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified });
            }
            Held::Seen(seen) => return Submitted::Final(seen.outcome()),
        };
        if existing.digest != digest {
            return Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified });
        }
        match existing.state {
            TransferState::Settled => {
                Submitted::Final(Outcome::Settled { at: existing.settled_at.unwrap_or(existing.created_at) })
            }
            TransferState::Rejected => Submitted::Final(Outcome::Rejected {
                reason: existing.reason.expect("rejected transfers carry a reason"),
            }),
            TransferState::Received | TransferState::Reserved => Submitted::Pending,
        }
    }

    /// The business checks of a new payment, in the order a payer expects
    /// to hear about them. `None`: reserve it.
    pub(crate) fn check_payment(&self, now: TimestampMs, order: &PaymentOrder) -> Option<ReasonCode> {
        let payer = match self.participants.get(&order.payer.participant) {
            Some(p) if p.status == ParticipantStatus::Active => p,
            _ => return Some(ReasonCode::PayerSuspended),
        };
        let stamp = order.id.created_at_ms().unwrap_or(i64::MIN);
        if stamp > now.saturating_add(self.config.id_future_skew_ms_max)
            || stamp < now.saturating_sub(self.config.id_age_ms_max)
        {
            return Some(ReasonCode::IdTimestampOutOfRange);
        }
        if order.amount > self.config.amount_max {
            return Some(ReasonCode::AmountNotAllowed);
        }
        if order.payee.participant == payer.id {
            return Some(ReasonCode::OnUsPayment);
        }
        let payee = match self.participants.get(&order.payee.participant) {
            Some(p) if p.status == ParticipantStatus::Active => p,
            _ => return Some(ReasonCode::UnknownPayeeParticipant),
        };
        if !self.online.contains_key(&payee.id) {
            return Some(ReasonCode::PayeeOffline);
        }
        if payee.inflight_in >= self.config.payee_inflight_max {
            return Some(ReasonCode::PayeeBusy);
        }
        if payer.available() < order.amount {
            return Some(ReasonCode::InsufficientLiquidity);
        }
        None
    }

    pub(crate) fn answer(
        &mut self,
        now: TimestampMs,
        payee: ParticipantId,
        id: EndToEndId,
        decision: Decision,
        out: &mut Output,
    ) {
        let transfer = match self.transfers.lookup(&id) {
            Some(Held::Full(transfer)) => transfer,
            Some(Held::Seen(_)) => {
                // Final, and long enough ago that its record is archived.
                self.answer_stats.late_or_duplicate += 1;
                return;
            }
            None => {
                self.answer_stats.unknown += 1;
                return;
            }
        };
        if transfer.payee.participant != payee || id.kind() != IdKind::Payment {
            self.answer_stats.unknown += 1;
            return;
        }
        if transfer.state != TransferState::Reserved {
            self.answer_stats.late_or_duplicate += 1;
            return;
        }
        let amount = transfer.amount;
        match decision {
            Decision::Accept => {
                self.record(Event::Settled { id, at: now }, out);
                out.finals.push((id, Outcome::Settled { at: now }));
                out.effects.push(Effect::Settled { payee, id, amount, at: now });
            }
            Decision::Reject(reason) => {
                let reason = if reason.is_reject_reason() { reason } else { ReasonCode::RejectedByPayee };
                self.record(Event::Rejected { id, reason, at: now }, out);
                out.finals.push((id, Outcome::Rejected { reason }));
            }
        }
    }

    /// What `caller` may see of `t`: nothing unless it is one of the two sides.
    pub(crate) fn view_for(&self, caller: ParticipantId, t: &Transfer) -> Option<TransferView> {
        view_of(caller, t, self.originals.get(&t.id).copied())
    }
}

/// What `caller` may see of `t` (a return of `original`): nothing unless
/// it is one of the two sides.
pub(crate) fn view_of(caller: ParticipantId, t: &Transfer, original: Option<EndToEndId>) -> Option<TransferView> {
    if t.payer.participant != caller && t.payee.participant != caller {
        return None;
    }
    Some(TransferView {
        id: t.id,
        state: t.state,
        reason: t.reason,
        payer: t.payer,
        payee: t.payee,
        amount: t.amount,
        created_at: t.created_at,
        settled_at: t.settled_at,
        returned: t.returned,
        original,
    })
}
