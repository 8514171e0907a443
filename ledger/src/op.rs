//! The engine's operations: each one its own input type and its own result
//! type (as TigerBeetle's state machine pairs an operation with its result),
//! so a reply can never be paired with the wrong request.
//!
//! [`Engine::execute`] runs any [`Operation`] and returns exactly its
//! [`Operation::Result`]. The switch's runtime carries each kind of
//! operation to the engine thread with a reply channel of that result type.

use crate::{
    AdminError, CycleError, Decision, EndUser, Engine, EnvelopeError, EnvelopeHeader, EnvelopeItem, EnvelopeView,
    Event, Liquidity, LookupError, NotHeld, Outcome, Output, ParticipantStatus, ParticipantView, PaymentOrder,
    ReturnOrder, TransferView,
};
use ponte_directory::claims::{Claim, ClaimAction, ClaimError, ClaimKind};
use ponte_directory::keys::Key;
use ponte_directory::registry::{DirectoryError, Entry, LookupView, NewKey, Owner};
use ponte_domain::{Account, Amount, EndToEndId, ParticipantId, TimestampMs};
use ponte_settlement::report::{CycleHeader, SettledMovement};

/// Something the engine can be asked to do, and what it answers.
pub trait Operation {
    /// The immediate answer. Payments that wait for their payee answer
    /// [`Submitted::Pending`]; their outcome comes later in
    /// [`Output::finals`].
    type Result;

    /// Validates, decides and records; see [`Engine::execute`].
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result;

    /// The transfer this operation will look up, for a prefetch ahead of
    /// executing it ([`Engine::prefetch`]). Only payments, answers and
    /// returns touch the transfer table on the hot path.
    fn transfer(&self) -> Option<&EndToEndId> {
        None
    }
}

/// The immediate answer to a payment or a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Reserved and waiting for the payee; the outcome comes later in
    /// [`Output::finals`] under the same id.
    Pending,
    /// The outcome is already known (new, or from an earlier submission).
    Final(Outcome),
    /// A return whose original is not in memory: read it from the archive
    /// (complete for it once the archive wrote the ops the mark names) and
    /// send the return again with it; not found there, it is refused
    /// `OriginalNotFound` (nothing was recorded).
    NotHeld(crate::NotHeld),
}

/// A participant's keys and their reconciliation digest.
#[derive(Debug, Clone)]
pub struct KeyList {
    /// One page, in key order.
    pub entries: Vec<Entry>,
    /// Over every key the participant holds, not only this page.
    pub digest: u64,
    /// How many keys the participant holds.
    pub total: usize,
}

/// A payer's payment.
#[derive(Debug, Clone)]
pub struct Submit(pub PaymentOrder);

impl Operation for Submit {
    type Result = Submitted;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Submitted {
        engine.submit(now, self.0, out)
    }
    fn transfer(&self) -> Option<&EndToEndId> {
        Some(&self.0.id)
    }
}

/// A payee's answer to a payment pushed to it. Late, repeated and unknown
/// answers change nothing and are counted ([`Engine::answer_stats`]).
#[derive(Debug, Clone)]
pub struct Answer {
    pub payee: ParticipantId,
    pub id: EndToEndId,
    pub decision: Decision,
}

impl Operation for Answer {
    type Result = ();
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) {
        engine.answer(now, self.payee, self.id, self.decision, out)
    }
    fn transfer(&self) -> Option<&EndToEndId> {
        Some(&self.id)
    }
}

/// A return the original payee asked for, with its original as the
/// archive holds it when the engine no longer has it in memory
/// ([`Submitted::NotHeld`] asks for it).
#[derive(Debug, Clone)]
pub struct Return(pub ReturnOrder, pub Option<Box<crate::ArchivedTransfer>>);

impl Operation for Return {
    type Result = Submitted;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Submitted {
        engine.return_payment(now, self.0, self.1.as_deref(), out)
    }
    fn transfer(&self) -> Option<&EndToEndId> {
        Some(&self.0.id)
    }
}

/// A transfer as one of its two sides may see it (`None` for anyone else).
#[derive(Debug, Clone)]
pub struct Status {
    pub caller: ParticipantId,
    pub id: EndToEndId,
}

impl Operation for Status {
    /// `Err`: not in memory; the archive holds it if anything does, once
    /// it wrote the ops the mark names.
    type Result = Result<Option<TransferView>, NotHeld>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        match engine.transfers.get(&self.id) {
            Some(t) => Ok(engine.view_for(self.caller, t)),
            None => Err(engine.not_held()),
        }
    }
}

/// The operator admits a participant (idempotent with the same details).
#[derive(Debug, Clone)]
pub struct RegisterParticipant {
    pub id: ParticipantId,
    pub name: String,
    pub net_debit_cap: Amount,
}

impl Operation for RegisterParticipant {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        engine.register(self.id, self.name, self.net_debit_cap, out)
    }
}

/// The operator sets a participant's net debit cap.
#[derive(Debug, Clone)]
pub struct SetLimit {
    pub id: ParticipantId,
    pub net_debit_cap: Amount,
}

impl Operation for SetLimit {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        let SetLimit { id, net_debit_cap } = self;
        engine.change_participant(id, Event::LimitSet { id, net_debit_cap }, out)
    }
}

/// The operator suspends or reactivates a participant.
#[derive(Debug, Clone)]
pub struct SetStatus {
    pub id: ParticipantId,
    pub status: ParticipantStatus,
}

impl Operation for SetStatus {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        let SetStatus { id, status } = self;
        engine.change_participant(id, Event::StatusSet { id, status }, out)
    }
}

#[derive(Debug, Clone)]
pub struct GetParticipant {
    pub id: ParticipantId,
}

impl Operation for GetParticipant {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        engine.view(self.id).ok_or(AdminError::UnknownParticipant(self.id))
    }
}

/// Every participant, by code.
#[derive(Debug, Clone)]
pub struct ListParticipants;

impl Operation for ListParticipants {
    type Result = Vec<ParticipantView>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Vec<ParticipantView> {
        let mut all: Vec<_> = engine.participants.keys().filter_map(|id| engine.view(*id)).collect();
        all.sort_by_key(|p| p.id);
        all
    }
}

/// The operator sets a participant's lookup category ('A' to 'H').
#[derive(Debug, Clone)]
pub struct SetLookupCategory {
    pub id: ParticipantId,
    pub category: char,
}

impl Operation for SetLookupCategory {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        let SetLookupCategory { id, category } = self;
        if !ponte_directory::lookups::is_category(category) {
            return Err(AdminError::InvalidCategory);
        }
        engine.change_participant(id, Event::LookupCategorySet { id, category }, out)
    }
}

/// The operator switches a participant between net debit cap and prefunded.
#[derive(Debug, Clone)]
pub struct SetLiquidity {
    pub id: ParticipantId,
    pub liquidity: Liquidity,
}

impl Operation for SetLiquidity {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        let SetLiquidity { id, liquidity } = self;
        engine.change_participant(id, Event::LiquiditySet { id, liquidity }, out)
    }
}

/// The operator records money deposited to a prefunded participant's balance.
#[derive(Debug, Clone)]
pub struct FundsIn {
    pub id: ParticipantId,
    pub amount: Amount,
}

impl Operation for FundsIn {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        engine.move_funds(self.id, self.amount, true, out)
    }
}

/// The operator records money withdrawn (at most what is available).
#[derive(Debug, Clone)]
pub struct FundsOut {
    pub id: ParticipantId,
    pub amount: Amount,
}

impl Operation for FundsOut {
    type Result = Result<ParticipantView, AdminError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        engine.move_funds(self.id, self.amount, false, out)
    }
}

/// Registers a directory key for an account at the caller.
#[derive(Debug, Clone)]
pub struct RegisterKey {
    pub caller: ParticipantId,
    pub key: NewKey,
    pub account: Account,
    pub owner: Owner,
}

impl Operation for RegisterKey {
    type Result = Result<Entry, DirectoryError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.register_key(now, self.caller, self.key, self.account, self.owner, out)
    }
}

#[derive(Debug, Clone)]
pub struct DeleteKey {
    pub caller: ParticipantId,
    pub key: Key,
}

impl Operation for DeleteKey {
    type Result = Result<Entry, DirectoryError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        engine.delete_key(self.caller, self.key, out)
    }
}

/// Points a key held by the caller at another of its accounts.
#[derive(Debug, Clone)]
pub struct MoveKey {
    pub caller: ParticipantId,
    pub key: Key,
    pub account: Account,
}

impl Operation for MoveKey {
    type Result = Result<Entry, DirectoryError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        engine.move_key(self.caller, self.key, self.account, out)
    }
}

/// Looks a key up for an end user (rate limited).
#[derive(Debug, Clone)]
pub struct LookupKey {
    pub caller: ParticipantId,
    pub end_user: EndUser,
    pub key: Key,
}

impl Operation for LookupKey {
    type Result = Result<LookupView, LookupError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, _: &mut Output) -> Self::Result {
        engine.lookup_key(now, self.caller, self.end_user, &self.key)
    }
}

/// The keys the caller holds and their reconciliation digest.
#[derive(Debug, Clone)]
pub struct ListKeys {
    pub caller: ParticipantId,
    /// The last key of the previous page; `None` for the first.
    pub after: Option<Key>,
    pub limit: usize,
}

impl Operation for ListKeys {
    type Result = KeyList;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> KeyList {
        let registry = &engine.directory.registry;
        let (page, total) = registry.entries_of_page(self.caller, self.after.as_ref(), self.limit);
        KeyList { entries: page.into_iter().cloned().collect(), digest: registry.digest_of(self.caller), total }
    }
}

/// The caller claims a key held elsewhere (ownership or portability).
#[derive(Debug, Clone)]
pub struct OpenClaim {
    pub caller: ParticipantId,
    pub kind: ClaimKind,
    pub key: Key,
    pub account: Account,
    pub owner: Owner,
}

impl Operation for OpenClaim {
    type Result = Result<Claim, ClaimError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.open_claim(now, self.caller, self.kind, self.key, self.account, self.owner, out)
    }
}

#[derive(Debug, Clone)]
pub struct ActOnClaim {
    pub caller: ParticipantId,
    pub id: u64,
    pub action: ClaimAction,
}

impl Operation for ActOnClaim {
    type Result = Result<Claim, ClaimError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.act_on_claim(now, self.caller, self.id, self.action, out)
    }
}

/// Claims the caller is party to.
#[derive(Debug, Clone)]
pub struct ListClaims {
    pub caller: ParticipantId,
    /// The last claim id of the previous page; `None` for the first.
    pub after: Option<u64>,
    pub limit: usize,
}

impl Operation for ListClaims {
    /// A page of the caller's claims, in id order.
    type Result = Vec<Claim>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Vec<Claim> {
        engine.directory.claims.of_page(self.caller, self.after, self.limit).into_iter().cloned().collect()
    }
}

/// The operator closes the open settlement cycle now.
#[derive(Debug, Clone)]
pub struct CloseCycle;

impl Operation for CloseCycle {
    type Result = CycleHeader;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> CycleHeader {
        engine.ensure_cycle_open(now, out);
        engine.close_cycle(now, out)
    }
}

/// The operator confirms a closed cycle was posted in the RTGS.
#[derive(Debug, Clone)]
pub struct ConfirmCycle {
    pub id: u64,
}

impl Operation for ConfirmCycle {
    type Result = Result<CycleHeader, CycleError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.confirm_cycle(now, self.id, out)
    }
}

#[derive(Debug, Clone)]
pub struct ListCycles;

impl Operation for ListCycles {
    type Result = Vec<CycleHeader>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Vec<CycleHeader> {
        engine.cycles.values().map(|c| c.header).collect()
    }
}

/// A cycle's header and movements, for its report. The report itself
/// (sorting, netting, digest: seconds for millions of movements) is built
/// by the caller, off the engine thread ([`Engine::cycle_report`] does both
/// in one call).
#[derive(Debug, Clone)]
pub struct CycleMovements {
    pub id: u64,
}

impl Operation for CycleMovements {
    /// The header, the movements in memory and, when some were archived,
    /// what the archive must hold for the rest.
    type Result = Result<(CycleHeader, Vec<SettledMovement>, Option<NotHeld>), CycleError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        let (header, movements) = engine.cycle_report_parts(self.id)?;
        Ok((header, movements, engine.cycle_not_held(self.id)))
    }
}

/// A page of a participant's own movements in a cycle (reconciliation), in
/// end-to-end id order: those after `after`, at most `limit`.
#[derive(Debug, Clone)]
pub struct CycleTransfers {
    pub caller: ParticipantId,
    pub id: u64,
    /// The position of the last transfer of the previous page; `None` for
    /// the first page.
    pub after: Option<u64>,
    pub limit: usize,
}

impl Operation for CycleTransfers {
    /// The caller's first `limit` transfers of the cycle in memory after
    /// position `after`, in position order (the order the engine recorded
    /// them), each with its position; and, when some of the cycle was
    /// archived, what the archive must hold for the rest (its transfers
    /// come before those in memory). A page costs what it holds, not the
    /// cycle's size.
    type Result = Result<(Vec<(u64, TransferView)>, Option<NotHeld>), CycleError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        if !engine.cycles.contains_key(&self.id) {
            return Err(CycleError::Unknown(self.id));
        }
        let from = self.after.map_or(0, |after| after.saturating_add(1));
        let hot: Vec<(u64, TransferView)> = engine
            .settled_in_from(self.id, from)
            .filter_map(|(position, t)| Some((position, engine.view_for(self.caller, t)?)))
            .take(self.limit)
            .collect();
        Ok((hot, engine.cycle_not_held(self.id)))
    }
}

/// A paying agency opens an envelope (header and control totals).
#[derive(Debug, Clone)]
pub struct OpenEnvelope {
    pub caller: ParticipantId,
    pub header: EnvelopeHeader,
    pub digest: u128,
}

impl Operation for OpenEnvelope {
    type Result = Result<EnvelopeView, EnvelopeError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.open_envelope(now, self.caller, self.header, self.digest, out)
    }
}

/// The next items of an open envelope (at most `ENVELOPE_CHUNK_ITEMS_MAX`).
#[derive(Debug, Clone)]
pub struct AddEnvelopeItems {
    pub caller: ParticipantId,
    pub number: u64,
    pub items: Vec<EnvelopeItem>,
}

impl Operation for AddEnvelopeItems {
    type Result = Result<EnvelopeView, EnvelopeError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) -> Self::Result {
        engine.add_envelope_items(self.caller, self.number, self.items, out)
    }
}

/// Checks the control totals and starts paying.
#[derive(Debug, Clone)]
pub struct SealEnvelope {
    pub caller: ParticipantId,
    pub number: u64,
}

impl Operation for SealEnvelope {
    type Result = Result<EnvelopeView, EnvelopeError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.seal_envelope(now, self.caller, self.number, out)
    }
}

/// An envelope's progress; `caller` None is the operator.
#[derive(Debug, Clone)]
pub struct GetEnvelope {
    pub caller: Option<ParticipantId>,
    pub agency: ParticipantId,
    pub reference: String,
}

impl Operation for GetEnvelope {
    type Result = Result<EnvelopeView, EnvelopeError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        engine.get_envelope(self.caller, self.agency, &self.reference)
    }
}

/// A page of an envelope's item outcomes.
#[derive(Debug, Clone)]
pub struct EnvelopeItems {
    pub caller: Option<ParticipantId>,
    pub agency: ParticipantId,
    pub reference: String,
    pub offset: u32,
    pub limit: u32,
}

impl Operation for EnvelopeItems {
    type Result = Result<crate::ItemsPage, EnvelopeError>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        engine.envelope_items(self.caller, self.agency, &self.reference, self.offset, self.limit)
    }
}

/// A payee opened an inbox stream. Not journaled: connections do not
/// survive a restart.
#[derive(Debug, Clone)]
pub struct InboxOpened(pub ParticipantId);

impl Operation for InboxOpened {
    type Result = ();
    fn execute(self, engine: &mut Engine, _: TimestampMs, out: &mut Output) {
        *engine.online.entry(self.0).or_insert(0) += 1;
        engine.remind_recalls(self.0, out);
    }
}

#[derive(Debug, Clone)]
pub struct InboxClosed(pub ParticipantId);

impl Operation for InboxClosed {
    type Result = ();
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) {
        if let Some(count) = engine.online.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                engine.online.remove(&self.0);
            }
        }
    }
}

/// A payer's participant recalls a settled payment it sent, with the
/// original as the archive holds it when the engine no longer has it in
/// memory ([`crate::RecallError::NotHeld`] asks for it).
#[derive(Debug, Clone)]
pub struct RequestRecall(pub crate::RecallOrder, pub Option<Box<crate::ArchivedTransfer>>);

impl Operation for RequestRecall {
    type Result = Result<crate::Recall, crate::RecallError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.recall(now, self.0, self.1.as_deref(), out)
    }
}

/// The payee's participant refuses a recall of a payment it received.
#[derive(Debug, Clone)]
pub struct RefuseRecall {
    pub responder: ParticipantId,
    pub original: EndToEndId,
    pub reason: ponte_domain::ReasonCode,
}

impl Operation for RefuseRecall {
    type Result = Result<crate::Recall, crate::RecallError>;
    fn execute(self, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Self::Result {
        engine.refuse_recall(now, self.responder, self.original, self.reason, out)
    }
}

/// The recall of a payment, as one of its two sides may see it.
#[derive(Debug, Clone)]
pub struct GetRecall {
    pub caller: ParticipantId,
    pub original: EndToEndId,
}

impl Operation for GetRecall {
    type Result = Option<crate::Recall>;
    fn execute(self, engine: &mut Engine, _: TimestampMs, _: &mut Output) -> Self::Result {
        engine.recall_for(self.caller, &self.original).cloned()
    }
}
