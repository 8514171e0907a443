//! What the engine thread hands the journal thread: a batch's journal
//! bytes and the notices to carry out once they are durable.

use super::requests::{InboxChange, Reply, Waiter};
use ponte_domain::EndToEndId;
use ponte_ledger::{Effect, Outcome};
use std::sync::mpsc as std_mpsc;

/// Work the journal thread does after the fsync that covers it.
pub(super) enum Notice {
    /// The caller's answer, with when the engine took the command in.
    Outcome(Waiter, EndToEndId, Outcome, std::time::Instant),
    /// Boxed: a reply (a query's answer) is several times the size of the
    /// other notices, and every notice in a batch's vector is as large as
    /// the largest kind; copying notices was a tenth of the engine thread.
    Reply(Reply),
    Effect(Effect),
    Inbox(InboxChange),
    /// Transfers evicted (and late returns) for the archive thread, sent
    /// once the events behind them are durable.
    Archive(Vec<ponte_ledger::NumberedOp>),
}

pub(super) struct Batch {
    pub(super) journal: Vec<u8>,
    pub(super) notices: Vec<Notice>,
}

/// Batches handed from the engine thread to the journal thread, and their
/// emptied buffers coming back. Reusing them matters: a batch's journal
/// bytes are often hundreds of kilobytes, and with a fresh buffer per
/// batch, freed on the other thread, the allocator and the kernel zeroing
/// fresh pages took a large share of the engine thread's samples in a
/// profile of an open-loop run.
pub(super) struct Journaling {
    pub(super) batches: std_mpsc::SyncSender<Batch>,
    pub(super) spares: std_mpsc::Receiver<Batch>,
}

/// Emptied batches kept for reuse (the rest are freed), and the largest
/// journal buffer kept (an envelope's batches can be megabytes): the
/// spares hold at most 64 MiB of journal buffers.
pub(super) const SPARE_BUFFERS: usize = 64;

pub(super) const SPARE_JOURNAL_BYTES_MAX: usize = 1 << 20;
