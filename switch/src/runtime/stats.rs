//! Counters readable from any thread, without locks.

use ponte_domain::ReasonCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters readable from any thread, without locks.
#[derive(Debug, Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub events: AtomicU64,
    pub settled: AtomicU64,
    pub rejected: AtomicU64,
    pub overloaded: AtomicU64,
    pub inbox_frames_dropped: AtomicU64,
    /// Payee answers the switch could not take (told back as AnswerRefused).
    pub answers_refused: AtomicU64,
    /// Rejections by reason code number.
    pub rejects_by_reason: ReasonCounters,
    /// Payments reserved and waiting for their payee (set by the engine thread).
    pub reserved: AtomicU64,
    /// Engine batches waiting for the journal thread.
    pub journal_queue_depth: std::sync::atomic::AtomicI64,
    /// Late, duplicate or unknown payee answers (ignored, counted).
    pub answers_ignored: AtomicU64,
    /// Messages over the participants' payment streams, by kind.
    pub streams: StreamTraffic,
    /// Journal records acknowledged (set by the journal thread after each
    /// append; the snapshot follower reads up to here).
    pub journal_records: AtomicU64,
    /// Snapshots written, and the journal records and bytes of the latest.
    pub snapshots_written: AtomicU64,
    pub snapshot_records: AtomicU64,
    pub snapshot_bytes: AtomicU64,
    pub snapshot_failures: AtomicU64,
    /// Full transfer records in the engine's memory, transfers in its
    /// duplicate window (full records and window entries), and transfers
    /// evicted to the archive so far (set by the engine thread).
    pub transfers_held: AtomicU64,
    pub transfers_in_window: AtomicU64,
    /// The store cannot make records durable now (no quorum): set and
    /// cleared by the journal thread; callers are refused UNAVAILABLE.
    pub store_unavailable: std::sync::atomic::AtomicBool,
    pub transfers_evicted: AtomicU64,
    /// Items of complete envelopes in the archive, not in memory.
    pub envelope_items_archived: AtomicU64,
}

/// Messages and the items they carried over one kind of stream.
#[derive(Debug, Default)]
pub struct Traffic {
    pub messages: AtomicU64,
    pub items: AtomicU64,
}

impl Traffic {
    pub fn count(&self, items: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
    }
}

/// The participants' streams: how many payments a message carries is what
/// the stream cost of a payment depends on.
#[derive(Debug, Default)]
pub struct StreamTraffic {
    /// Submit-stream batches received (items: payments).
    pub submits: Traffic,
    /// Submit-stream result batches sent (items: results).
    pub results: Traffic,
    /// Inbox messages sent (items: payments to answer and notices).
    pub inbox: Traffic,
    /// Inbox answer batches received (items: answers).
    pub answers: Traffic,
}

impl StreamTraffic {
    /// (kind, traffic) for each kind, as named in metrics and reports.
    pub fn kinds(&self) -> [(&'static str, &Traffic); 4] {
        [("submits", &self.submits), ("results", &self.results), ("inbox", &self.inbox), ("answers", &self.answers)]
    }
}

/// One counter per reason code, indexed by [`ReasonCode::index`], so no
/// two codes can share a counter whatever their numbers.
#[derive(Debug)]
pub struct ReasonCounters([AtomicU64; ReasonCode::COUNT]);

impl Default for ReasonCounters {
    fn default() -> Self {
        ReasonCounters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl ReasonCounters {
    pub fn count(&self, reason: ReasonCode) {
        self.0[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, reason: ReasonCode) -> u64 {
        self.0[reason.index()].load(Ordering::Relaxed)
    }
}
