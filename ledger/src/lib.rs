//! The payment engine: a deterministic state machine with no I/O.
//!
//! `Engine::execute(now, operation, &mut output)` validates an operation
//! (one of [`op`]: each its own input and result type), decides
//! its outcome and records what changed as [`Event`]s. Every change of durable
//! state goes through [`Engine::apply`], the same function that replays the
//! journal on start, so a rebuilt engine is the engine that was running.
//! Time is an argument; nothing here reads a clock, a socket or a disk.
//!
//! The driver (the switch crate's `runtime`) owns the engine on one thread, feeds it
//! batches of commands, appends `output.journal` to the store with one fsync,
//! and only then answers `output.finals` and carries out `output.effects` (pushing
//! payments to payees).

mod cycles;
mod directory;
mod disbursement;
mod event;
pub mod op;
mod table;
#[cfg(test)]
mod tests;

pub use cycles::{Cycle, CycleError};
pub use directory::DirectoryState;
pub use disbursement::{
    Beneficiary, Disbursements, ENVELOPE_CHUNK_ITEMS_MAX, ENVELOPE_ITEMS_MAX, EnvelopeError, EnvelopeHeader,
    EnvelopeItem, EnvelopeView, ITEMS_PAGE_MAX, ItemOutcome, ItemView, check_item,
};
pub use event::{Event, decode_events};
pub use op::{KeyList, Operation, Submitted};
pub use ponte_directory::lookups::{DEFAULT_CATEGORY, EndUser, LookupError};
pub use ponte_domain::{Decision, Liquidity, ParticipantStatus};

use ponte_directory::keys::Key;
use ponte_domain::{
    Account, Amount, EndToEndId, IdKind, ParticipantId, ReasonCode, TimestampMs, TransferEvent, TransferState,
};
use std::collections::HashMap;
use table::{DeadlineQueue, TransferTable};

/// Longest remittance text, in characters.
pub const REMITTANCE_LEN_MAX: usize = 140;
/// Longest participant name, in characters.
pub const PARTICIPANT_NAME_LEN_MAX: usize = 140;

/// Rules the engine enforces. Every field has a documented default.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How long a payee has to answer an incoming payment (default 5 s).
    pub payee_timeout_ms: i64,
    /// How far in the future an end-to-end id's timestamp may be (default 5 min).
    pub id_future_skew_ms_max: i64,
    /// How old an end-to-end id's timestamp may be when first submitted (default 24 h).
    pub id_age_ms_max: i64,
    /// Largest single payment (default "1000000000.00").
    #[serde(with = "ponte_domain::money::as_decimal_string")]
    pub amount_max: Amount,
    /// How long after settlement a payment can be returned (default 90 days).
    pub return_window_ms: i64,
    /// Most payments awaiting one payee's answer at once (default 20,000).
    pub payee_inflight_max: u32,
    /// How long a donor participant has to resolve a key claim (default 7 days).
    pub claim_window_ms: i64,
    /// Close the open settlement cycle this long after it opened (default
    /// 1 hour; 0: only when the operator asks).
    pub cycle_close_every_ms: i64,
    /// How long a disbursement item waits for its payee participant to be
    /// online (after a restart payees reconnect) before it is tried anyway
    /// and fails AB08 (default 10 minutes).
    pub disbursement_offline_wait_ms: i64,
    /// Transfers the engine's table is built for at start-up (default 0:
    /// grow as needed). Set to a day's volume, the table is allocated and
    /// its memory touched before the switch serves (up to ~370 bytes per
    /// transfer, rounded to a power of two), so payments never wait on a
    /// page fault or a table resize, and missing memory shows at start,
    /// not at peak.
    pub transfers_capacity: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            payee_timeout_ms: 5_000,
            id_future_skew_ms_max: 5 * 60_000,
            id_age_ms_max: 24 * 3_600_000,
            amount_max: Amount::units(1_000_000_000),
            return_window_ms: 90 * 24 * 3_600_000,
            payee_inflight_max: 20_000,
            claim_window_ms: ponte_directory::claims::RESOLUTION_WINDOW_MS,
            cycle_close_every_ms: 3_600_000,
            disbursement_offline_wait_ms: 600_000,
            transfers_capacity: 0,
        }
    }
}

/// A participant as the engine keeps it.
#[derive(Debug, Clone)]
pub struct ParticipantState {
    pub id: ParticipantId,
    pub name: String,
    pub status: ParticipantStatus,
    /// How far below zero `position - reserved` may go.
    pub net_debit_cap: Amount,
    /// Settled credits minus settled debits.
    pub position: Amount,
    /// Liquidity held by this participant's payments awaiting their payee.
    pub reserved: Amount,
    /// Payments to this participant awaiting its answer.
    pub inflight_in: u32,
    /// How the participant's limit works.
    pub liquidity: Liquidity,
    /// Prefunded money held at the switch's settlement account (prefunded
    /// participants): funds in minus funds out plus settled cycles' nets.
    pub balance: Amount,
}

impl ParticipantState {
    /// What it can still send: `net_debit_cap + position - reserved` (net
    /// debit cap) or `balance + position - reserved` (prefunded).
    pub fn available(&self) -> Amount {
        ponte_settlement::liquidity::Exposure {
            liquidity: self.liquidity,
            net_debit_cap: self.net_debit_cap,
            balance: self.balance,
            position: self.position,
            reserved: self.reserved,
        }
        .available()
    }
}

/// A payment or return as the engine keeps it.
#[derive(Debug, Clone)]
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

/// xxh3-128 of the parts, each prefixed by its length so ("ab","c") and
/// ("a","bc") differ. Journals store these digests: the value must never change.
fn content_digest_parts(parts: &[&[u8]]) -> u128 {
    // One-shot hashing of the concatenation equals the streaming hasher's
    // result, and is several times faster for these small inputs.
    let mut buffer = [0_u8; 512];
    let mut len = 0;
    for part in parts {
        let Some(slot) = buffer.get_mut(len..len + 4 + part.len()) else {
            return content_digest_streaming(parts);
        };
        slot[..4].copy_from_slice(&(part.len() as u32).to_le_bytes());
        slot[4..].copy_from_slice(part);
        len += 4 + part.len();
    }
    xxhash_rust::xxh3::xxh3_128(&buffer[..len])
}

fn content_digest_streaming(parts: &[&[u8]]) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u32).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest128()
}

/// The final outcome of a payment or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Settled { at: TimestampMs },
    Rejected { reason: ReasonCode },
}

/// What a caller may see of a transfer.
#[derive(Debug, Clone)]
pub struct TransferView {
    pub id: EndToEndId,
    pub state: TransferState,
    pub reason: Option<ReasonCode>,
    pub payer: Account,
    pub payee: Account,
    pub amount: Amount,
    pub created_at: TimestampMs,
    pub settled_at: Option<TimestampMs>,
    pub returned: Amount,
    pub original: Option<EndToEndId>,
}

#[derive(Debug, Clone)]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub name: String,
    pub status: ParticipantStatus,
    pub liquidity: Liquidity,
    pub balance: Amount,
    pub net_debit_cap: Amount,
    pub position: Amount,
    pub reserved: Amount,
    pub available: Amount,
    pub online: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("participant {0} is not registered")]
    UnknownParticipant(ParticipantId),
    #[error("participant {0} is already registered with other details")]
    AlreadyRegistered(ParticipantId),
    #[error("participant name must be 1 to {PARTICIPANT_NAME_LEN_MAX} characters")]
    InvalidName,
    #[error("participant code 00000000 is reserved (it marks unresolved payees)")]
    ReservedCode,
    #[error("lookup category must be a letter from A to H")]
    InvalidCategory,
    #[error("funds move only for prefunded participants")]
    NotPrefunded,
    #[error("only {available} can be withdrawn now (the rest is reserved or owed)")]
    InsufficientFunds { available: Amount },
    #[error("the amount must be greater than zero")]
    NonPositiveAmount,
}

/// Work for the payee side, to carry out once the journal is durable: what
/// a participant is told on its inbox.
#[derive(Debug)]
pub enum Effect {
    /// Push an incoming payment to the payee's inbox.
    Deliver(Box<Delivery>),
    /// Tell the payee a payment is settled: it may credit its customer.
    Settled { payee: ParticipantId, id: EndToEndId, at: TimestampMs },
    /// Tell the payee a payment it was asked about is not going ahead.
    Cancelled { payee: ParticipantId, id: EndToEndId, reason: ReasonCode },
    /// Tell the original payer a return of its payment is settled.
    Returned(Box<ReturnNotice>),
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

/// What one or more operations produced: encoded journal events, final
/// outcomes for whoever waits on them, and notices for payees.
#[derive(Debug, Default)]
pub struct Output {
    /// Events, postcard-encoded back to back; append as one journal record.
    pub journal: Vec<u8>,
    pub event_count: usize,
    /// Payments and returns that reached their final state here after
    /// answering [`Submitted::Pending`]: answer whoever waits for the id.
    pub finals: Vec<(EndToEndId, Outcome)>,
    pub effects: Vec<Effect>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.event_count == 0 && self.finals.is_empty() && self.effects.is_empty()
    }

    pub fn clear(&mut self) {
        self.journal.clear();
        self.event_count = 0;
        self.finals.clear();
        self.effects.clear();
    }
}

/// Counters of answers that changed nothing (exposed for operators).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnswerStats {
    /// Answers for a payment that was already final (late or repeated).
    pub late_or_duplicate: u64,
    /// Answers for an id the participant was never asked about.
    pub unknown: u64,
}

/// The deterministic ledger. See the module docs.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    participants: table::Map<ParticipantId, ParticipantState>,
    transfers: TransferTable,
    /// The payment each return gives back, by the return's id. Returns are
    /// few, so this lives beside the transfer table rather than in every
    /// transfer record.
    originals: table::Map<EndToEndId, EndToEndId>,
    /// Reserved payments by due time, so expiry is `O(expired)`.
    deadlines: DeadlineQueue,
    /// Open inbox streams per participant. Not durable.
    online: table::Map<ParticipantId, u32>,
    answer_stats: AnswerStats,
    directory: DirectoryState,
    /// When the earliest unresolved claim lapses (`i64::MAX`: none), so
    /// `expire` looks at claims only when one is due.
    claim_deadline: TimestampMs,
    /// The cycle settlements land in now.
    current_cycle: u64,
    cycles: std::collections::BTreeMap<u64, Cycle>,
    /// Bulk disbursement envelopes.
    disbursements: Disbursements,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let transfers = TransferTable::with_capacity(usize::try_from(config.transfers_capacity).unwrap_or(usize::MAX));
        Engine {
            config,
            participants: table::Map::default(),
            transfers,
            originals: table::Map::default(),
            deadlines: DeadlineQueue::default(),
            online: table::Map::default(),
            answer_stats: AnswerStats::default(),
            directory: DirectoryState::default(),
            claim_deadline: i64::MAX,
            current_cycle: 1,
            cycles: std::collections::BTreeMap::new(),
            disbursements: Disbursements::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn answer_stats(&self) -> AnswerStats {
        self.answer_stats
    }

    pub fn transfer(&self, id: &EndToEndId) -> Option<&Transfer> {
        self.transfers.get(id)
    }

    pub fn directory(&self) -> &DirectoryState {
        &self.directory
    }

    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&ParticipantState> {
        self.participants.get(&id)
    }

    pub fn participants(&self) -> impl Iterator<Item = &ParticipantState> {
        self.participants.values()
    }

    /// Payments reserved and waiting for their payee.
    pub fn reserved_count(&self) -> u64 {
        self.participants.values().map(|p| u64::from(p.inflight_in)).sum()
    }

    /// When the earliest reserved payment times out, if any.
    pub fn next_deadline(&mut self) -> Option<TimestampMs> {
        self.deadlines.next(&self.transfers)
    }

    /// How many commands ahead of the one executing a batch should call
    /// [`Engine::prefetch`]: enough for a cache miss (~100 ns, more with a
    /// TLB miss) to overlap the commands in between (~0.5 µs each).
    pub const PREFETCH_AHEAD: usize = 8;

    /// Starts loading the memory `operation` will look its transfer up in,
    /// without waiting for it; call it [`Engine::PREFETCH_AHEAD`] operations
    /// ahead of executing. Only a hint to the CPU: no state changes.
    pub fn prefetch<O: Operation>(&self, operation: &O) {
        if let Some(id) = operation.transfer() {
            self.transfers.prefetch(id);
        }
    }

    /// Executes one operation at `now`, answering with exactly its result
    /// type (see [`op`]).
    pub fn execute<O: Operation>(&mut self, now: TimestampMs, operation: O, out: &mut Output) -> O::Result {
        operation.execute(self, now, out)
    }

    /// Rejects every reserved payment whose payee deadline is at or before `now`.
    pub fn expire(&mut self, now: TimestampMs, out: &mut Output) {
        self.ensure_cycle_open(now, out);
        self.close_on_schedule(now, out);
        if now >= self.claim_deadline {
            self.expire_claims(now, out);
            self.claim_deadline = self.directory.claims.earliest_deadline().unwrap_or(i64::MAX);
        }
        while let Some((deadline, position)) = self.deadlines.pop_due(now, &self.transfers) {
            let transfer = self.transfers.at(position);
            debug_assert!(transfer.state == TransferState::Reserved && transfer.deadline == deadline);
            let (id, payee) = (transfer.id, transfer.payee.participant);
            self.record(Event::Rejected { id, reason: ReasonCode::PayeeTimeout, at: now }, out);
            out.finals.push((id, Outcome::Rejected { reason: ReasonCode::PayeeTimeout }));
            out.effects.push(Effect::Cancelled { payee, id, reason: ReasonCode::PayeeTimeout });
        }
    }

    fn submit(&mut self, now: TimestampMs, mut order: PaymentOrder, out: &mut Output) -> Submitted {
        debug_assert_eq!(order.id.kind(), IdKind::Payment);
        let digest = order.digest();
        if let Some(existing) = self.transfers.get(&order.id) {
            return self.resubmission(existing, digest);
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

    fn resubmission(&self, existing: &Transfer, digest: u128) -> Submitted {
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
    fn check_payment(&self, now: TimestampMs, order: &PaymentOrder) -> Option<ReasonCode> {
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
        let payee = match self.participants.get(&order.payee.participant) {
            Some(p) if p.status == ParticipantStatus::Active && p.id != payer.id => p,
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

    fn answer(&mut self, now: TimestampMs, payee: ParticipantId, id: EndToEndId, decision: Decision, out: &mut Output) {
        let Some(transfer) = self.transfers.get(&id) else {
            self.answer_stats.unknown += 1;
            return;
        };
        if transfer.payee.participant != payee || id.kind() != IdKind::Payment {
            self.answer_stats.unknown += 1;
            return;
        }
        if transfer.state != TransferState::Reserved {
            self.answer_stats.late_or_duplicate += 1;
            return;
        }
        match decision {
            Decision::Accept => {
                self.record(Event::Settled { id, at: now }, out);
                out.finals.push((id, Outcome::Settled { at: now }));
                out.effects.push(Effect::Settled { payee, id, at: now });
            }
            Decision::Reject(reason) => {
                let reason = if reason.is_payee_reason() { reason } else { ReasonCode::RejectedByPayee };
                self.record(Event::Rejected { id, reason, at: now }, out);
                out.finals.push((id, Outcome::Rejected { reason }));
            }
        }
    }

    fn return_payment(&mut self, now: TimestampMs, order: ReturnOrder, out: &mut Output) -> Submitted {
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

    fn check_return(&self, now: TimestampMs, order: &ReturnOrder, original: &Transfer) -> Option<ReasonCode> {
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

    fn status(&self, caller: ParticipantId, id: &EndToEndId) -> Option<TransferView> {
        self.view_for(caller, self.transfers.get(id)?)
    }

    /// What `caller` may see of `t`: nothing unless it is one of the two sides.
    fn view_for(&self, caller: ParticipantId, t: &Transfer) -> Option<TransferView> {
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
            original: self.originals.get(&t.id).copied(),
        })
    }

    fn register(
        &mut self,
        id: ParticipantId,
        name: String,
        net_debit_cap: Amount,
        out: &mut Output,
    ) -> Result<ParticipantView, AdminError> {
        if name.trim().is_empty() || name.chars().count() > PARTICIPANT_NAME_LEN_MAX {
            return Err(AdminError::InvalidName);
        }
        if id == Account::unresolved().participant {
            return Err(AdminError::ReservedCode);
        }
        if let Some(existing) = self.participants.get(&id) {
            if existing.name == name && existing.net_debit_cap == net_debit_cap {
                return Ok(self.view(id).expect("exists"));
            }
            return Err(AdminError::AlreadyRegistered(id));
        }
        self.record(Event::ParticipantRegistered { id, name: &name, net_debit_cap }, out);
        Ok(self.view(id).expect("just registered"))
    }

    fn move_funds(
        &mut self,
        id: ParticipantId,
        amount: Amount,
        into: bool,
        out: &mut Output,
    ) -> Result<ParticipantView, AdminError> {
        let p = self.participants.get(&id).ok_or(AdminError::UnknownParticipant(id))?;
        if p.liquidity != Liquidity::Prefunded {
            return Err(AdminError::NotPrefunded);
        }
        if amount <= Amount::ZERO {
            return Err(AdminError::NonPositiveAmount);
        }
        if !into && p.available() < amount {
            return Err(AdminError::InsufficientFunds { available: p.available() });
        }
        let delta = if into { amount } else { amount.checked_neg().expect("positive amounts negate") };
        self.change_participant(id, Event::FundsMoved { id, amount: delta }, out)
    }

    /// Opens cycle 1 (journaled, so a replay has the same opening time) the
    /// first time the engine runs.
    fn ensure_cycle_open(&mut self, now: TimestampMs, out: &mut Output) {
        if self.cycles.is_empty() {
            self.record(Event::CycleOpened { id: 1, at: now }, out);
        }
    }

    /// Records a change to an existing participant (limit, status).
    fn change_participant(
        &mut self,
        id: ParticipantId,
        event: Event<'_>,
        out: &mut Output,
    ) -> Result<ParticipantView, AdminError> {
        if !self.participants.contains_key(&id) {
            return Err(AdminError::UnknownParticipant(id));
        }
        self.record(event, out);
        Ok(self.view(id).expect("exists"))
    }

    fn view(&self, id: ParticipantId) -> Option<ParticipantView> {
        let p = self.participants.get(&id)?;
        Some(ParticipantView {
            id: p.id,
            name: p.name.clone(),
            status: p.status,
            liquidity: p.liquidity,
            balance: p.balance,
            net_debit_cap: p.net_debit_cap,
            position: p.position,
            reserved: p.reserved,
            available: p.available(),
            online: self.online.contains_key(&id),
        })
    }

    /// Applies an event, then appends it to the journal output.
    fn record(&mut self, event: Event<'_>, out: &mut Output) {
        self.apply(&event);
        event.encode_into(&mut out.journal);
        out.event_count += 1;
    }

    /// The only function that changes durable state. Used live and on replay.
    ///
    /// # Panics
    /// On an event that contradicts the state (a journal from another
    /// switch, or a bug): replaying it could only make the ledger wrong.
    pub fn apply(&mut self, event: &Event<'_>) {
        match *event {
            Event::EnvelopeOpened { .. }
            | Event::EnvelopeItemsAdded { .. }
            | Event::EnvelopeSealed { .. }
            | Event::EnvelopeDiscarded { .. }
            | Event::EnvelopeItemStarted { .. } => self.apply_envelope(event),
            Event::KeyRegistered { .. }
            | Event::KeyDeleted { .. }
            | Event::KeyMoved { .. }
            | Event::ClaimStored { .. }
            | Event::ClaimCompleted { .. }
            | Event::LookupCategorySet { .. } => self.apply_directory(event),
            Event::LiquiditySet { id, liquidity } => self.participant_mut(id).liquidity = liquidity,
            Event::FundsMoved { id, amount } => {
                let p = self.participant_mut(id);
                p.balance = p.balance.checked_add(amount).expect("balance overflow");
            }
            Event::CycleOpened { id, at } => {
                self.cycles.entry(id).or_insert_with(|| Cycle::open(id, at)).header.opened_at = at;
            }
            Event::CycleClosed { id, at } => self.apply_cycle_closed(id, at),
            Event::CycleSettled { id, at } => self.apply_cycle_settled(id, at),
            Event::ParticipantRegistered { id, name, net_debit_cap } => {
                let previous = self.participants.insert(
                    id,
                    ParticipantState {
                        id,
                        name: name.to_owned(),
                        status: ParticipantStatus::Active,
                        net_debit_cap,
                        position: Amount::ZERO,
                        reserved: Amount::ZERO,
                        inflight_in: 0,
                        liquidity: Liquidity::NetDebitCap,
                        balance: Amount::ZERO,
                    },
                );
                assert!(previous.is_none(), "participant {id} registered twice");
            }
            Event::LimitSet { id, net_debit_cap } => self.participant_mut(id).net_debit_cap = net_debit_cap,
            Event::StatusSet { id, status } => self.participant_mut(id).status = status,
            Event::Reserved { id, payer, payee, amount, digest, at, deadline, remittance: _ } => {
                let transfer = Transfer {
                    id,
                    payer,
                    payee,
                    amount,
                    state: TransferState::Received.next(TransferEvent::Reserve).expect("legal"),
                    reason: None,
                    created_at: at,
                    settled_at: None,
                    deadline,
                    digest,
                    returned: Amount::ZERO,
                    cycle: 0,
                };
                let position =
                    self.transfers.insert(transfer).unwrap_or_else(|| panic!("transfer {id} reserved twice"));
                let payer_state = self.participant_mut(payer.participant);
                payer_state.reserved = payer_state.reserved.checked_add(amount).expect("reserved overflow");
                self.participant_mut(payee.participant).inflight_in += 1;
                self.deadlines.push(deadline, position);
            }
            Event::Settled { id, at } => {
                let position = self.transfers.find(&id).expect("settled transfer exists");
                let (payer, payee, amount) = {
                    let t = self.transfers.at_mut(position);
                    t.state = t.state.next(TransferEvent::Settle).expect("only reserved transfers settle");
                    t.settled_at = Some(at);
                    t.cycle = u32::try_from(self.current_cycle).expect("fewer than 4 billion cycles");
                    (t.payer.participant, t.payee.participant, t.amount)
                };
                self.cycle_mut().add(position, payer, payee, amount);
                let p = self.participant_mut(payer);
                p.reserved = p.reserved.checked_sub(amount).expect("reserved underflow");
                p.position = p.position.checked_sub(amount).expect("position underflow");
                let q = self.participant_mut(payee);
                q.inflight_in -= 1;
                q.position = q.position.checked_add(amount).expect("position overflow");
                self.envelope_item_final(&id);
            }
            Event::Rejected { id, reason, at: _ } => {
                let (payer, payee, amount) = {
                    let t = self.transfers.get_mut(&id).expect("rejected transfer exists");
                    t.state = t.state.next(TransferEvent::Reject).expect("only reserved transfers are rejected");
                    t.reason = Some(reason);
                    (t.payer.participant, t.payee.participant, t.amount)
                };
                let p = self.participant_mut(payer);
                p.reserved = p.reserved.checked_sub(amount).expect("reserved underflow");
                self.participant_mut(payee).inflight_in -= 1;
                self.envelope_item_final(&id);
            }
            Event::Refused { id, payer, payee, amount, digest, reason, at, original } => {
                let transfer = Transfer {
                    id,
                    payer,
                    payee,
                    amount,
                    state: TransferState::Received.next(TransferEvent::Reject).expect("legal"),
                    reason: Some(reason),
                    created_at: at,
                    settled_at: None,
                    deadline: at,
                    digest,
                    returned: Amount::ZERO,
                    cycle: 0,
                };
                assert!(self.transfers.insert(transfer).is_some(), "transfer {id} recorded twice");
                if let Some(original) = original {
                    self.originals.insert(id, original);
                }
                self.envelope_item_final(&id);
            }
            Event::ReturnSettled { id, original, payer, payee, amount, digest, reason: _, at } => {
                let transfer = Transfer {
                    id,
                    payer,
                    payee,
                    amount,
                    state: TransferState::Received.next(TransferEvent::Settle).expect("legal"),
                    reason: None,
                    created_at: at,
                    settled_at: Some(at),
                    deadline: at,
                    digest,
                    returned: Amount::ZERO,
                    cycle: u32::try_from(self.current_cycle).expect("fewer than 4 billion cycles"),
                };
                let position = self.transfers.insert(transfer).unwrap_or_else(|| panic!("return {id} recorded twice"));
                self.cycle_mut().add(position, payer.participant, payee.participant, amount);
                self.originals.insert(id, original);
                let o = self.transfers.get_mut(&original).expect("original of a return exists");
                o.returned = o.returned.checked_add(amount).expect("returned overflow");
                assert!(o.returned <= o.amount, "return exceeds original {original}");
                let p = self.participant_mut(payer.participant);
                p.position = p.position.checked_sub(amount).expect("position underflow");
                let q = self.participant_mut(payee.participant);
                q.position = q.position.checked_add(amount).expect("position overflow");
            }
        }
    }

    fn cycle_mut(&mut self) -> &mut Cycle {
        let id = self.current_cycle;
        self.cycles.entry(id).or_insert_with(|| Cycle::open(id, 0))
    }

    fn apply_directory(&mut self, event: &Event<'_>) {
        let d = &mut self.directory;
        match event {
            Event::KeyRegistered { entry } => d.registry.insert(entry.clone()),
            Event::KeyDeleted { key } => {
                d.registry.remove(key).expect("deleted key exists");
            }
            Event::KeyMoved { key, account } => d.registry.set_account(key, *account),
            Event::ClaimStored { claim } => {
                if !claim.status.is_final() {
                    self.claim_deadline = self.claim_deadline.min(claim.resolve_by);
                }
                d.claims.store(claim.clone());
            }
            Event::ClaimCompleted { claim, entry } => {
                d.registry.remove(&claim.key).expect("claimed key exists");
                d.registry.insert(entry.clone());
                d.claims.store(claim.clone());
            }
            Event::LookupCategorySet { id, category } => d.lookups.set_category(*id, *category),
            _ => unreachable!("not a directory event"),
        }
    }

    fn participant_mut(&mut self, id: ParticipantId) -> &mut ParticipantState {
        self.participants.get_mut(&id).unwrap_or_else(|| panic!("event names unknown participant {id}"))
    }

    /// Checks the ledger's invariants from scratch; `Err` says which broke.
    /// Run after a replay (the switch refuses to start on a broken ledger)
    /// and throughout the property tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut position_sum: i128 = 0;
        let mut reserved = HashMap::<ParticipantId, i128>::new();
        let mut inflight = HashMap::<ParticipantId, u32>::new();
        let queued = self.deadlines.queued();
        for (position, t) in self.transfers.values().enumerate() {
            if t.state == TransferState::Reserved {
                *reserved.entry(t.payer.participant).or_default() += i128::from(t.amount.minor());
                *inflight.entry(t.payee.participant).or_default() += 1;
                let position = u32::try_from(position).expect("fewer than 4 billion transfers");
                if !queued.contains(&(t.deadline, position)) {
                    return Err(format!("reserved transfer {} has no deadline", t.id));
                }
            }
            if t.returned > t.amount {
                return Err(format!("transfer {} returned {} of {}", t.id, t.returned, t.amount));
            }
        }
        // Positions are what unsettled cycles (open or closed) net to.
        let mut unsettled = HashMap::<ParticipantId, i128>::new();
        for cycle in self.cycles.values().filter(|c| c.header.status != ponte_settlement::report::CycleStatus::Settled)
        {
            for (participant, net) in cycle.nets.iter() {
                *unsettled.entry(participant).or_default() += i128::from(net.minor());
            }
        }
        for p in self.participants.values() {
            position_sum += i128::from(p.position.minor());
            let expected = reserved.get(&p.id).copied().unwrap_or(0);
            if i128::from(p.reserved.minor()) != expected {
                return Err(format!(
                    "participant {} reserved {} but its transfers hold {}",
                    p.id, p.reserved, expected
                ));
            }
            if p.inflight_in != inflight.get(&p.id).copied().unwrap_or(0) {
                return Err(format!("participant {} in-flight count is off", p.id));
            }
            let expected = unsettled.get(&p.id).copied().unwrap_or(0);
            if i128::from(p.position.minor()) != expected {
                return Err(format!(
                    "participant {} position {} but its unsettled cycles net to {expected}",
                    p.id, p.position
                ));
            }
        }
        if position_sum != 0 {
            return Err(format!("positions sum to {position_sum} minor units, not zero"));
        }
        self.check_envelopes()
    }
}
