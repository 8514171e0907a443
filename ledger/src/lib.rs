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

mod apply;
pub mod archive;
mod cycles;
mod deadlines;
mod digest;
mod directory;
mod disbursement;
mod effects;
mod event;
mod invariants;
pub mod op;
mod participants;
mod payments;
mod recalls;
mod returns;
pub mod snapshot;
mod table;
#[cfg(test)]
mod tests;

pub use archive::{ArchiveOp, ArchivedTransfer, NotHeld, NumberedOp};
pub use cycles::{Cycle, CycleError};
pub use directory::DirectoryState;
pub use disbursement::{
    ArchivedItems, ArchivedRange, Beneficiary, Disbursements, ENVELOPE_CHUNK_ITEMS_MAX, ENVELOPE_ITEMS_MAX,
    ENVELOPE_PIECE_ITEMS, EnvelopeError, EnvelopeHeader, EnvelopeItem, EnvelopeView, ITEMS_PAGE_MAX, ItemOutcome,
    ItemView, ItemsPage, check_item,
};
pub use effects::{Delivery, Effect, ReturnNotice};
pub use event::{Event, decode_events};
pub use op::{KeyList, Operation, Submitted};
pub use participants::{AdminError, ParticipantState, ParticipantView};
pub use payments::{AnswerStats, Outcome, PaymentOrder, Transfer};
pub use ponte_directory::lookups::{DEFAULT_CATEGORY, EndUser, LookupError};
pub use ponte_domain::TransferView;
pub use ponte_domain::{Decision, Liquidity, ParticipantStatus};
pub use recalls::{RECALL_TEXT_LEN_MAX, Recall, RecallError, RecallOrder, RecallState};
pub use returns::ReturnOrder;

use deadlines::DeadlineQueue;
use ponte_domain::{Amount, EndToEndId, ParticipantId, TimestampMs, TransferState};
use table::TransferTable;

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
    /// How long the archive keeps a transfer after it settled (or was
    /// refused), for status queries, returns, past cycles' transfers and
    /// reports (default 90 days; never shorter than `return_window_ms`).
    /// Past it, queries answer NOT_FOUND saying so.
    pub archive_retention_ms: i64,
    /// How long a final transfer keeps its full record in memory before it
    /// goes to the archive (default 60 s; only with an archive). Until its
    /// id leaves the duplicate window the engine keeps a 40-byte entry for
    /// it (resubmissions are answered from that); status queries and
    /// returns after this read the archive.
    pub final_record_ms: i64,
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
    /// How long a payee's participant has to answer a recall of a payment
    /// it received (default 15 days; never past the payment's return
    /// window). Unanswered, the recall closes expired (NOAS).
    pub recall_answer_ms: i64,
    /// The country profile whose rules the directory holds keys and end
    /// users to (national ids, phone country code), by ISO code (default
    /// "BR"; an unknown code stops the switch at start with the known ones).
    pub country: ponte_directory::keys::Country,
}

impl EngineConfig {
    /// How long the archive keeps a transfer: `archive_retention_ms`, never
    /// shorter than the return window (a return must find its original).
    pub fn retention_ms(&self) -> i64 {
        self.archive_retention_ms.max(self.return_window_ms)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            payee_timeout_ms: 5_000,
            id_future_skew_ms_max: 5 * 60_000,
            id_age_ms_max: 24 * 3_600_000,
            amount_max: Amount::units(1_000_000_000),
            return_window_ms: 90 * 24 * 3_600_000,
            archive_retention_ms: 90 * 24 * 3_600_000,
            final_record_ms: 60_000,
            payee_inflight_max: 20_000,
            claim_window_ms: ponte_directory::claims::RESOLUTION_WINDOW_MS,
            cycle_close_every_ms: 3_600_000,
            disbursement_offline_wait_ms: 600_000,
            transfers_capacity: 0,
            recall_answer_ms: 15 * 24 * 3_600_000,
            country: ponte_directory::keys::Country::DEFAULT,
        }
    }
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
    /// When `expire` next looks for closed claims past the retention (0:
    /// at the first tick). Not durable.
    claims_forget_at: TimestampMs,
    /// The cycle settlements land in now.
    current_cycle: u64,
    cycles: std::collections::BTreeMap<u64, Cycle>,
    /// Bulk disbursement envelopes.
    disbursements: Disbursements,
    /// Returns settled against archived payments (see [`archive`]).
    late_returns: archive::LateReturns,
    /// Recalls of settled payments, open and closed, by the payment's id.
    recalls: std::collections::BTreeMap<EndToEndId, recalls::Recall>,
    /// When `expire` next has a recall to expire or forget (0: at the
    /// first tick). Not durable.
    recalls_due: TimestampMs,
    /// Archive ops made over the whole history (see [`archive`]).
    archive_ops: u64,
    /// Archive ops not yet taken by the driver (`None`: not kept).
    archive_out: Option<Vec<NumberedOp>>,
}

impl Engine {
    /// Drops, from the front of the payee-deadline queue, the entries of
    /// transfers no longer reserved. A serving engine does this as its
    /// ticks look for due deadlines; an engine that only applies records
    /// (a replay, a standby, the snapshot thread's follower) calls this
    /// after each record, or its queue keeps an entry for every payment
    /// ever reserved (16 B each: 1.6 GB after 100 M payments, and seconds
    /// of invariant checking at a takeover).
    pub fn drop_stale_deadlines(&mut self) {
        self.deadlines.next(&self.transfers);
    }

    /// Payee-deadline queue entries held, live or stale.
    pub fn deadlines_queued(&self) -> usize {
        self.deadlines.len()
    }

    pub fn new(config: EngineConfig) -> Engine {
        let transfers = TransferTable::with_capacity(usize::try_from(config.transfers_capacity).unwrap_or(usize::MAX));
        let directory = DirectoryState::new(config.country);
        Engine {
            config,
            participants: table::Map::default(),
            transfers,
            originals: table::Map::default(),
            deadlines: DeadlineQueue::default(),
            online: table::Map::default(),
            answer_stats: AnswerStats::default(),
            directory,
            claim_deadline: i64::MAX,
            claims_forget_at: 0,
            current_cycle: 1,
            cycles: std::collections::BTreeMap::new(),
            disbursements: Disbursements::default(),
            late_returns: archive::LateReturns::default(),
            recalls: std::collections::BTreeMap::new(),
            recalls_due: 0,
            archive_ops: 0,
            archive_out: None,
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

    /// Full transfer records in memory (in flight, or final for less than
    /// `final_record_ms`).
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Transfers in the duplicate window: full records and window entries.
    pub fn window_count(&self) -> usize {
        self.transfers.window_len()
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

    /// Applies the events of one journal record in order (a replay, a
    /// follower), each event's transfer prefetched
    /// [`Engine::PREFETCH_AHEAD`] events ahead as a batch does for
    /// commands. An undecodable event stops it with the error (the events
    /// before it are applied).
    pub fn apply_record(&mut self, record: &[u8]) -> Result<(), postcard::Error> {
        let mut events = decode_events(record);
        let mut ahead = std::collections::VecDeque::with_capacity(Self::PREFETCH_AHEAD + 1);
        loop {
            while ahead.len() <= Self::PREFETCH_AHEAD {
                let Some(event) = events.next().transpose()? else { break };
                if let Some(id) = event.transfer() {
                    self.transfers.prefetch(id);
                }
                ahead.push_back(event);
            }
            let Some(event) = ahead.pop_front() else { return Ok(()) };
            self.apply(&event);
        }
    }

    /// Executes one operation at `now`, answering with exactly its result
    /// type (see [`op`]).
    pub fn execute<O: Operation>(&mut self, now: TimestampMs, operation: O, out: &mut Output) -> O::Result {
        operation.execute(self, now, out)
    }

    /// Opens cycle 1 (journaled, so a replay has the same opening time) the
    /// first time the engine runs.
    fn ensure_cycle_open(&mut self, now: TimestampMs, out: &mut Output) {
        if self.cycles.is_empty() {
            self.record(Event::CycleOpened { id: 1, at: now }, out);
        }
    }
}
