//! Driving the engine: one engine thread, one journal thread, bounded queues.
//!
//! ```text
//!  gRPC tasks --try_send--> [requests: bounded] --> engine thread
//!                                                    | execute a batch (pure)
//!                                                    v
//!                                  [batches: bounded] --> journal thread
//!                                                          | append + fsync (group)
//!                                                          v
//!                              answer callers, push inbox frames to payees
//! ```
//! The engine thread runs the next batch while the journal thread flushes
//! the previous ones, so a slow disk widens the groups instead of stalling
//! the engine. Nothing leaves the switch before the fsync that covers it:
//! replies and inbox frames are sent by the journal thread after commit.
//!
//! Queue bounds make overload visible: when `requests` is full a caller gets
//! [`SubmitError::Overloaded`] at once (RESOURCE_EXHAUSTED on the wire).

use engine_thread::engine_loop;
use handoff::{Journaling, SPARE_BUFFERS};
use journal_thread::journal_loop;
use requests::Asked;

mod archive_thread;
mod engine_thread;
mod handoff;
mod journal_thread;
mod recovery;
mod requests;
mod snapshot_thread;
mod standby;
mod stats;
mod waiters;

pub use archive_thread::{ArchiveAccess, ArchiveError};
pub use requests::{InboxChange, Job, Reply, Request, Waiter};
pub use stats::{ReasonCounters, Stats, StreamTraffic, Traffic};

use crate::store::{ReplayError, Store, StoreError};
use ponte_ledger::EngineConfig;
use ponte_ledger::op::Operation;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use tokio::sync::{mpsc, oneshot};

/// Sizes of the runtime's queues and batches. Every one is a hard bound.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Commands waiting for the engine (default 65,536). Full: RESOURCE_EXHAUSTED.
    pub request_queue_max: usize,
    /// Commands the engine executes before handing a batch to the journal (default 4,096).
    pub batch_size_max: usize,
    /// Engine batches waiting for the journal (default 64).
    pub journal_queue_max: usize,
    /// Engine batches flushed together in one fsync (default 256).
    pub group_batches_max: usize,
    /// Callers waiting on the same pending end-to-end id (default 16).
    pub waiters_per_id_max: usize,
    /// Pace of bulk disbursement: envelope items started per second, after
    /// each batch's retail commands, so a million-item envelope never
    /// starves real-time payments (default 5,000).
    pub disbursement_per_s: u32,
    /// Disbursement items waiting for their payees at once (default 10,000).
    pub disbursement_in_flight_max: usize,
    /// Write a snapshot of the engine this often, when the journal grew
    /// (default 0: never). A restart loads the newest snapshot and replays
    /// only the journal after it; records the kept snapshots cover are
    /// trimmed. Off by default while the engine still holds every transfer
    /// ever made: the snapshot thread's second engine doubles the memory and
    /// applies every record a second time (docs/STORAGE.md, BENCHMARKS.md).
    pub snapshot_every_ms: u64,
    /// Snapshots kept (default 2): the journal is kept from the oldest, so
    /// a damaged newest snapshot falls back to the one before.
    pub snapshots_kept: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            request_queue_max: 65_536,
            batch_size_max: 4_096,
            journal_queue_max: 64,
            group_batches_max: 256,
            waiters_per_id_max: 16,
            disbursement_per_s: 5_000,
            disbursement_in_flight_max: 10_000,
            snapshot_every_ms: 0,
            snapshots_kept: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the switch is at capacity; retry with backoff")]
    Overloaded,
    #[error("the switch is shutting down")]
    Stopped,
    #[error(
        "the switch's journal store has no quorum or cannot be reached: nothing can be made durable, so nothing \
         is accepted; retry with backoff (the switch resumes by itself when the store is back)"
    )]
    StoreUnavailable,
}

/// A cheap, cloneable handle the gRPC services use to reach the engine.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    requests: mpsc::Sender<Request>,
    stats: Arc<Stats>,
    next_stream: Arc<AtomicU64>,
    config: Arc<EngineConfig>,
    archive: Option<ArchiveAccess>,
}

impl EngineHandle {
    /// The archive of transfers that left the engine's memory (`None`:
    /// the store has none, and the engine keeps every transfer).
    pub fn archive(&self) -> Option<&ArchiveAccess> {
        self.archive.as_ref()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Shared counters, for the metrics publisher.
    pub fn stats_arc(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Commands waiting in the engine's queue.
    pub fn request_queue_depth(&self) -> usize {
        self.requests.max_capacity() - self.requests.capacity()
    }

    pub fn engine_config(&self) -> &EngineConfig {
        &self.config
    }

    /// Queues a command without waiting; refuses when the queue is full.
    pub fn try_send(&self, request: Request) -> Result<(), SubmitError> {
        if self.stats.store_unavailable.load(Ordering::Relaxed) {
            return Err(SubmitError::StoreUnavailable);
        }
        self.requests.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                SubmitError::Overloaded
            }
            mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
        })
    }

    /// Queues a command, waiting for room. For commands that must not be
    /// dropped (payee answers, inbox bookkeeping); the wait is backpressure
    /// on the stream that sent them.
    pub async fn send(&self, request: Request) -> Result<(), SubmitError> {
        self.requests.send(request).await.map_err(|_| SubmitError::Stopped)
    }

    /// Runs an operation and waits for its result; refused at once when
    /// the queue is full.
    pub async fn ask<O>(&self, operation: O) -> Result<O::Result, SubmitError>
    where
        O: Operation + Send + 'static,
        O::Result: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.try_send(Request::Ask(Box::new(Asked { operation, reply })))?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// As [`EngineHandle::ask`], waiting for room in the queue instead of
    /// refusing: for work already admitted in parts (an envelope's chunks),
    /// where the wait is backpressure on the one stream that sent it.
    pub async fn ask_waiting<O>(&self, operation: O) -> Result<O::Result, SubmitError>
    where
        O: Operation + Send + 'static,
        O::Result: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Ask(Box::new(Asked { operation, reply }))).await?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    pub fn next_stream_id(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("the journal replays into a ledger that breaks an invariant: {0}")]
    Invariant(String),
    #[error("cannot start the engine threads: {0}")]
    Thread(std::io::Error),
    #[error(
        "the journal starts at record {first} (older records were trimmed behind a snapshot) but the newest \
         usable snapshot covers {snapshot}: restore the snapshots folder from a backup"
    )]
    Trimmed { first: u64, snapshot: u64 },
    #[error(
        "the archive holds {written} archive ops but the snapshot started from made {snapshot}: the archive \
         file was replaced by an older one; restore it from the same backup as the snapshots"
    )]
    ArchiveBehind { written: u64, snapshot: u64 },
}

/// The running engine and journal threads.
pub struct Runtime {
    pub handle: EngineHandle,
    /// Tells the engine thread to stop even while handles are still alive
    /// (long-lived inbox streams hold some).
    stop: Arc<std::sync::atomic::AtomicBool>,
    engine_thread: std::thread::JoinHandle<()>,
    journal_thread: std::thread::JoinHandle<Result<(), StoreError>>,
    snapshot_thread: Option<std::thread::JoinHandle<()>>,
    archive_thread: Option<std::thread::JoinHandle<()>>,
    /// Records replayed at start (after a standby's takeover: those
    /// committed since it last read the writer's journal).
    pub replayed_records: u64,
    /// Records a standby applied while following the writer before it took
    /// over (0 on the embedded store).
    pub followed_records: u64,
    /// Whether the journal was empty at start (a new switch).
    pub started_empty: bool,
    /// Becomes true when the journal thread ends (its store failed, or the
    /// runtime was stopped).
    journal_ended: tokio::sync::watch::Receiver<bool>,
}

/// Starts the snapshot thread when snapshots are asked for and the store
/// keeps them.
#[allow(clippy::too_many_arguments)]
fn spawn_snapshots(
    journal: &dyn Store,
    start_from: u64,
    engine_config: &EngineConfig,
    config: &RuntimeConfig,
    stats: &Arc<Stats>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
    archive_written: Option<tokio::sync::watch::Receiver<u64>>,
) -> Result<Option<std::thread::JoinHandle<()>>, StartError> {
    let Some(snapshots) = journal.snapshots().filter(|_| config.snapshot_every_ms > 0) else {
        return Ok(None);
    };
    let follower = snapshot_thread::SnapshotThread {
        snapshots,
        config: engine_config.clone(),
        start_from,
        every: std::time::Duration::from_millis(config.snapshot_every_ms),
        keep: config.snapshots_kept,
        stats: stats.clone(),
        stop: stop.clone(),
        archive_written,
        buffer: Vec::new(),
    };
    let spawned = std::thread::Builder::new().name("ponte-snapshot".into()).spawn(move || follower.run());
    Ok(Some(spawned.map_err(StartError::Thread)?))
}

/// Starts the engine thread.
fn spawn_engine(
    engine: ponte_ledger::Engine,
    requests: mpsc::Receiver<Request>,
    journaling: Journaling,
    config: &RuntimeConfig,
    stats: &Arc<Stats>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, StartError> {
    let tokio = tokio::runtime::Handle::current();
    let (config, stats, stop) = (config.clone(), stats.clone(), stop.clone());
    std::thread::Builder::new()
        .name("ponte-engine".into())
        .spawn(move || engine_loop(engine, requests, journaling, tokio, config, stats, stop))
        .map_err(StartError::Thread)
}

/// The archive thread, when the store has an archive: its queue, and what
/// queries and snapshots watch of it.
struct Archiving {
    ops: std_mpsc::SyncSender<Vec<ponte_ledger::NumberedOp>>,
    access: ArchiveAccess,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the archive thread, with `unarchived` (ops made before the start
/// that the archive lacks) first in its queue.
fn spawn_archive(
    archive: Option<Arc<dyn crate::store::Archive>>,
    engine_config: &EngineConfig,
    unarchived: Vec<ponte_ledger::NumberedOp>,
) -> Result<Option<Archiving>, StartError> {
    let Some(archive) = archive else { return Ok(None) };
    let (ops, ops_rx) = std_mpsc::sync_channel(archive_thread::ARCHIVE_QUEUE_MAX);
    let (written_tx, written) = tokio::sync::watch::channel(archive.written()?);
    let thread = archive_thread::ArchiveThread {
        archive: archive.clone(),
        ops: ops_rx,
        written: written_tx,
        retention_ms: engine_config.retention_ms(),
    };
    let thread = std::thread::Builder::new()
        .name("ponte-archive".into())
        .spawn(move || thread.run())
        .map_err(StartError::Thread)?;
    let mut unarchived = unarchived.into_iter().peekable();
    while unarchived.peek().is_some() {
        let chunk: Vec<_> = unarchived.by_ref().take(archive_thread::WRITE_OPS_MAX).collect();
        // The thread runs and drains the queue: this waits at most for it.
        ops.send(chunk).map_err(|_| StartError::Thread(std::io::Error::other("the archive thread ended")))?;
    }
    Ok(Some(Archiving { ops, access: ArchiveAccess { archive, written }, thread }))
}

impl Runtime {
    /// Replays the journal into a fresh engine (from its newest usable
    /// snapshot), checks the ledger's invariants, and starts the threads.
    /// Must be called from inside a tokio runtime (the engine thread uses
    /// its timer).
    pub fn start(
        journal: Box<dyn Store>,
        engine_config: EngineConfig,
        config: RuntimeConfig,
    ) -> Result<Runtime, StartError> {
        Runtime::start_preloaded(journal, None, engine_config, config)
    }

    /// Opens the embedded journal at `path` and starts on it, restoring its
    /// newest snapshot while the journal file opens (see [`recovery::Preload`]).
    pub fn start_embedded(
        path: &std::path::Path,
        engine_config: EngineConfig,
        config: RuntimeConfig,
    ) -> Result<Runtime, StartError> {
        let preload = recovery::Preload::spawn(crate::store::redb::snapshot_dir(path), engine_config.clone())?;
        let journal = crate::store::Journal::open(path).map_err(StoreError::from)?;
        Runtime::start_preloaded(Box::new(journal), Some(preload), engine_config, config)
    }

    fn start_preloaded(
        mut journal: Box<dyn Store>,
        preload: Option<recovery::Preload>,
        engine_config: EngineConfig,
        config: RuntimeConfig,
    ) -> Result<Runtime, StartError> {
        let archive = journal.archive(engine_config.retention_ms())?;
        let recovered = recovery::recover(journal.as_mut(), &engine_config, archive.as_deref(), preload)?;
        Runtime::start_recovered(journal, recovered, archive, engine_config, config)
    }

    /// Waits as a standby on Cassandra/ScyllaDB, following the writer's
    /// journal (see [`standby`]), and starts once this node is the writer,
    /// replaying only the records committed since its last read.
    pub fn start_standby(
        standby: crate::store::cql::CqlStandby,
        engine_config: EngineConfig,
        config: RuntimeConfig,
    ) -> Result<Runtime, StartError> {
        let archive = standby.archive(engine_config.retention_ms());
        let (journal, recovered) = standby::follow_until_writer(standby, &engine_config, &archive)?;
        Runtime::start_recovered(Box::new(journal), recovered, Some(archive), engine_config, config)
    }

    fn start_recovered(
        journal: Box<dyn Store>,
        recovered: recovery::Recovered,
        archive: Option<Arc<dyn crate::store::Archive>>,
        engine_config: EngineConfig,
        config: RuntimeConfig,
    ) -> Result<Runtime, StartError> {
        let started_empty = journal.is_empty();
        let followed_records = recovered.followed;
        let (engine, replayed_records) = (recovered.engine, recovered.replayed);
        tracing::info!(
            store = %journal.describe(),
            snapshot = recovered.from_snapshot,
            records = replayed_records,
            transfers = engine.transfer_count(),
            "journal replayed"
        );

        let stats = Arc::new(Stats::default());
        stats.journal_records.store(journal.len(), Ordering::Release);
        let (requests_tx, requests_rx) = mpsc::channel(config.request_queue_max);
        let (batches_tx, batches_rx) = std_mpsc::sync_channel(config.journal_queue_max);
        // Emptied batch buffers going back from the journal thread for reuse.
        let (spares_tx, spares_rx) = std_mpsc::sync_channel(SPARE_BUFFERS);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let journaling = Journaling { batches: batches_tx, spares: spares_rx };
        let engine_thread = spawn_engine(engine, requests_rx, journaling, &config, &stats, &stop)?;
        let archiving = spawn_archive(archive, &engine_config, recovered.unarchived)?;
        let archive_written = archiving.as_ref().map(|a| a.access.written.clone());
        let snapshot_thread = spawn_snapshots(
            journal.as_ref(),
            recovered.from_snapshot,
            &engine_config,
            &config,
            &stats,
            &stop,
            archive_written,
        )?;
        let archive_ops = archiving.as_ref().map(|a| a.ops.clone());
        let (ended_tx, journal_ended) = tokio::sync::watch::channel(false);
        let journal_thread = {
            let stats = stats.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ponte-journal".into())
                .spawn(move || {
                    let result = journal_loop(journal, batches_rx, spares_tx, archive_ops, config, stats, stop);
                    if result.is_err() {
                        crate::metrics::set_state(crate::metrics::State::Failed);
                    }
                    let _ = ended_tx.send(true);
                    result
                })
                .map_err(StartError::Thread)?
        };
        Ok(Runtime {
            handle: EngineHandle {
                requests: requests_tx,
                stats,
                next_stream: Arc::new(AtomicU64::new(1)),
                config: Arc::new(engine_config),
                archive: archiving.as_ref().map(|a| a.access.clone()),
            },
            stop,
            engine_thread,
            journal_thread,
            snapshot_thread,
            archive_thread: archiving.map(|a| a.thread),
            replayed_records,
            followed_records,
            started_empty,
            journal_ended,
        })
    }

    /// Watches for the end of the journal thread: once it is true nothing
    /// more can be made durable.
    pub fn journal_ended(&self) -> tokio::sync::watch::Receiver<bool> {
        self.journal_ended.clone()
    }

    /// Stops the engine (commands still queued are dropped: their callers
    /// see the switch stop) and waits until the journal has flushed
    /// everything already executed. Blocks: call from a blocking context.
    pub fn join(self) -> Result<(), StoreError> {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.handle);
        let _ = self.engine_thread.join();
        if let Some(snapshots) = self.snapshot_thread {
            let _ = snapshots.join();
        }
        let result = match self.journal_thread.join() {
            Ok(result) => result,
            Err(_) => Ok(()),
        };
        // The journal thread's end closed the archive queue: the archive
        // thread writes what is left and ends.
        if let Some(archive) = self.archive_thread {
            let _ = archive.join();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    /// Every payment's outcome and every effect goes through a notice, so
    /// their size is copied a few hundred thousand times a second.
    #[test]
    fn notices_stay_small() {
        assert!(
            std::mem::size_of::<super::handoff::Notice>() <= 96,
            "{}",
            std::mem::size_of::<super::handoff::Notice>()
        );
    }
}
