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

use crate::store::{ReplayError, Store, StoreError};
use ponte_domain::{EndToEndId, ParticipantId, ReasonCode, TimestampMs};
use ponte_ledger::op::{self, Operation};
use ponte_ledger::{Effect, Engine, EngineConfig, Outcome, Output, Submitted, decode_events};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
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
        }
    }
}

/// Where the final outcome of a payment or return goes.
#[derive(Debug)]
pub enum Waiter {
    /// A unary call.
    Once(oneshot::Sender<Outcome>),
    /// A submit stream. Its channel has room for every permit the stream
    /// holds, so the journal thread's `try_send` never finds it full.
    Stream(mpsc::Sender<(EndToEndId, Outcome)>),
}

impl Waiter {
    fn send(self, id: EndToEndId, outcome: Outcome) {
        match self {
            // A caller that went away no longer needs the answer; the
            // outcome stays queryable by id.
            Waiter::Once(tx) => drop(tx.send(outcome)),
            Waiter::Stream(tx) => drop(tx.try_send((id, outcome))),
        }
    }
}

/// One request to the engine thread, each kind with the channel its
/// answer goes back on. The pairing of an operation with its result type is
/// fixed here, when the request is made, so the engine thread never has to
/// guess what a reply is for.
pub enum Request {
    /// A payment: answered at once if final, else when its payee answers.
    Submit(op::Submit, Waiter),
    /// A return (final at once, or refused).
    Return(op::Return, Waiter),
    /// A payee's answer; nothing goes back.
    Answer(op::Answer),
    /// A payee's inbox stream opened: the engine counts it online, and the
    /// journal thread starts sending it frames.
    InboxOpened {
        participant: ParticipantId,
        stream: u64,
        frames: mpsc::Sender<Vec<Effect>>,
    },
    InboxClosed {
        participant: ParticipantId,
        stream: u64,
    },
    /// Any other operation, with a reply channel of its own result type
    /// (see [`EngineHandle::ask`]).
    Ask(Box<dyn Job>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Submit(submit, _) => write!(f, "Submit({})", submit.0.id),
            Request::Return(give_back, _) => write!(f, "Return({})", give_back.0.id),
            Request::Answer(answer) => write!(f, "Answer({})", answer.id),
            Request::InboxOpened { participant, stream, .. } => write!(f, "InboxOpened({participant}, {stream})"),
            Request::InboxClosed { participant, stream } => write!(f, "InboxClosed({participant}, {stream})"),
            Request::Ask(_) => f.write_str("Ask"),
        }
    }
}

impl Request {
    /// Starts loading the transfer this request will look up (see
    /// [`Engine::prefetch`]).
    fn prefetch(&self, engine: &Engine) {
        match self {
            Request::Submit(submit, _) => engine.prefetch(submit),
            Request::Return(give_back, _) => engine.prefetch(give_back),
            Request::Answer(answer) => engine.prefetch(answer),
            _ => {}
        }
    }
}

/// An operation and the channel for its result, behind one type so the
/// request queue can carry any of them.
pub trait Job: Send {
    /// Executes the operation; what comes back sends its result, and is
    /// called by the journal thread once the batch is durable.
    fn run(self: Box<Self>, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Reply;
}

/// Sends one operation's result to its caller.
pub type Reply = Box<dyn FnOnce() + Send>;

struct Asked<O: Operation> {
    operation: O,
    reply: oneshot::Sender<O::Result>,
}

impl<O> Job for Asked<O>
where
    O: Operation + Send + 'static,
    O::Result: Send + 'static,
{
    fn run(self: Box<Self>, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Reply {
        let result = engine.execute(now, self.operation, out);
        let reply = self.reply;
        // A caller that went away no longer needs the answer.
        Box::new(move || drop(reply.send(result)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the switch is at capacity; retry with backoff")]
    Overloaded,
    #[error("the switch is shutting down")]
    Stopped,
}

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

/// A cheap, cloneable handle the gRPC services use to reach the engine.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    requests: mpsc::Sender<Request>,
    stats: Arc<Stats>,
    next_stream: Arc<AtomicU64>,
    config: Arc<EngineConfig>,
}

impl EngineHandle {
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
}

/// The running engine and journal threads.
pub struct Runtime {
    pub handle: EngineHandle,
    /// Tells the engine thread to stop even while handles are still alive
    /// (long-lived inbox streams hold some).
    stop: Arc<std::sync::atomic::AtomicBool>,
    engine_thread: std::thread::JoinHandle<()>,
    journal_thread: std::thread::JoinHandle<Result<(), StoreError>>,
    /// Records replayed at start.
    pub replayed_records: u64,
    /// Becomes true when the journal thread ends (its store failed, or the
    /// runtime was stopped).
    journal_ended: tokio::sync::watch::Receiver<bool>,
}

impl Runtime {
    /// Opens the journal, replays it into a fresh engine, checks the
    /// ledger's invariants, and starts the two threads. Must be called from
    /// inside a tokio runtime (the engine thread uses its timer).
    pub fn start(
        mut journal: Box<dyn Store>,
        engine_config: EngineConfig,
        config: RuntimeConfig,
    ) -> Result<Runtime, StartError> {
        let mut engine = Engine::new(engine_config.clone());
        let replayed_records = journal.replay(&mut |_, record| {
            for event in decode_events(record) {
                let event = event.map_err(|e| format!("undecodable event: {e}"))?;
                engine.apply(&event);
            }
            Ok(())
        })?;
        engine.check_invariants().map_err(StartError::Invariant)?;
        tracing::info!(store = %journal.describe(), records = replayed_records, transfers = engine.transfer_count(), "journal replayed");

        let stats = Arc::new(Stats::default());
        let (requests_tx, requests_rx) = mpsc::channel(config.request_queue_max);
        let (batches_tx, batches_rx) = std_mpsc::sync_channel(config.journal_queue_max);
        // Emptied batch buffers going back from the journal thread for reuse.
        let (spares_tx, spares_rx) = std_mpsc::sync_channel(SPARE_BUFFERS);
        let tokio = tokio::runtime::Handle::current();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let engine_thread = {
            let stats = stats.clone();
            let config = config.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ponte-engine".into())
                .spawn(move || {
                    engine_loop(
                        engine,
                        requests_rx,
                        Journaling { batches: batches_tx, spares: spares_rx },
                        tokio,
                        config,
                        stats,
                        stop,
                    )
                })
                .map_err(StartError::Thread)?
        };
        let (ended_tx, journal_ended) = tokio::sync::watch::channel(false);
        let journal_thread = {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("ponte-journal".into())
                .spawn(move || {
                    let result = journal_loop(journal, batches_rx, spares_tx, config, stats);
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
            },
            stop,
            engine_thread,
            journal_thread,
            replayed_records,
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
        match self.journal_thread.join() {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }
}

/// Wall-clock milliseconds, never going backwards within this process.
struct Clock {
    last: TimestampMs,
}

impl Clock {
    fn now(&mut self) -> TimestampMs {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as TimestampMs)
            .unwrap_or(0);
        self.last = self.last.max(wall);
        self.last
    }
}

/// Work the journal thread does after the fsync that covers it.
enum Notice {
    /// The caller's answer, with when the engine took the command in.
    Outcome(Waiter, EndToEndId, Outcome, std::time::Instant),
    /// Boxed: a reply (a query's answer) is several times the size of the
    /// other notices, and every notice in a batch's vector is as large as
    /// the largest kind; copying notices was a tenth of the engine thread.
    Reply(Reply),
    Effect(Effect),
    InboxOpened {
        participant: ParticipantId,
        stream: u64,
        frames: mpsc::Sender<Vec<Effect>>,
    },
    InboxClosed {
        participant: ParticipantId,
        stream: u64,
    },
}

struct Batch {
    journal: Vec<u8>,
    notices: Vec<Notice>,
}

/// Batches handed from the engine thread to the journal thread, and their
/// emptied buffers coming back. Reusing them matters: a batch's journal
/// bytes are often hundreds of kilobytes, and with a fresh buffer per
/// batch, freed on the other thread, the allocator and the kernel zeroing
/// fresh pages took a large share of the engine thread's samples in a
/// profile of an open-loop run.
struct Journaling {
    batches: std_mpsc::SyncSender<Batch>,
    spares: std_mpsc::Receiver<Batch>,
}

/// Emptied batches kept for reuse (the rest are freed), and the largest
/// journal buffer kept (an envelope's batches can be megabytes): the
/// spares hold at most 64 MiB of journal buffers.
const SPARE_BUFFERS: usize = 64;
const SPARE_JOURNAL_BYTES_MAX: usize = 1 << 20;

/// How often an idle journal thread asks its store whether it can still
/// write (a Cassandra writer that lost its lease must stop promptly).
const STORE_CHECK: Duration = Duration::from_secs(1);

/// Longest the engine thread idles while disbursement items wait to start.
const DISBURSEMENT_TICK: Duration = Duration::from_millis(5);

/// A token bucket for the disbursement pace: `per_s` tokens a second, at
/// most a tenth of a second's worth saved up.
struct Pacer {
    per_s: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl Pacer {
    fn new(per_s: u32) -> Pacer {
        Pacer { per_s: f64::from(per_s), tokens: 0.0, last: std::time::Instant::now() }
    }

    fn take_all(&mut self) -> usize {
        let now = std::time::Instant::now();
        let burst = (self.per_s / 10.0).max(1.0);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_s).min(burst);
        self.last = now;
        let whole = self.tokens.floor();
        self.tokens -= whole;
        whole as usize
    }
}

/// Longest the engine thread waits before looking at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(200);

fn engine_loop(
    mut engine: Engine,
    mut requests: mpsc::Receiver<Request>,
    journaling: Journaling,
    tokio: tokio::runtime::Handle,
    config: RuntimeConfig,
    stats: Arc<Stats>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut clock = Clock { last: 0 };
    let mut pacer = Pacer::new(config.disbursement_per_s);
    let mut waiters = Waiters::default();
    let mut out = Output::default();
    let mut open = true;
    let mut pending = Vec::with_capacity(config.batch_size_max);
    let mut notices = Vec::new();
    while open && !stop.load(Ordering::Relaxed) {
        // Wait for the first command, or the next payee deadline (at most
        // STOP_CHECK, so a stop request is seen promptly).
        match requests.try_recv() {
            Ok(request) => pending.push(request),
            Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            Err(mpsc::error::TryRecvError::Empty) => {
                let now = clock.now();
                let mut wait = engine.next_deadline().map_or(STOP_CHECK, |d| {
                    Duration::from_millis(u64::try_from(d.saturating_sub(now)).unwrap_or(0)).min(STOP_CHECK)
                });
                if engine.disbursements().has_work() {
                    wait = wait.min(DISBURSEMENT_TICK);
                }
                if !wait.is_zero() {
                    match tokio.block_on(async { tokio::time::timeout(wait, requests.recv()).await }) {
                        Ok(Some(request)) => pending.push(request),
                        Ok(None) => open = false,
                        Err(_elapsed) => {}
                    }
                }
            }
        }
        while pending.len() < config.batch_size_max {
            match requests.try_recv() {
                Ok(request) => pending.push(request),
                Err(_) => break,
            }
        }

        let now = clock.now();
        let intake = std::time::Instant::now();
        out.clear();
        engine.expire(now, &mut out);
        stats.commands.fetch_add(pending.len() as u64, Ordering::Relaxed);
        let mut batch = pending.drain(..);
        while let Some(request) = batch.next() {
            if let Some(ahead) = batch.as_slice().get(Engine::PREFETCH_AHEAD - 1) {
                ahead.prefetch(&engine);
            }
            match request {
                Request::Submit(submit, waiter) => {
                    let id = submit.0.id;
                    let submitted = engine.execute(now, submit, &mut out);
                    follow_payment(id, submitted, waiter, intake, &mut waiters, &mut notices, &config, &stats);
                }
                Request::Return(give_back, waiter) => {
                    let id = give_back.0.id;
                    let submitted = engine.execute(now, give_back, &mut out);
                    follow_payment(id, submitted, waiter, intake, &mut waiters, &mut notices, &config, &stats);
                }
                Request::Answer(answer) => engine.execute(now, answer, &mut out),
                Request::InboxOpened { participant, stream, frames } => {
                    engine.execute(now, op::InboxOpened(participant), &mut out);
                    notices.push(Notice::InboxOpened { participant, stream, frames });
                }
                Request::InboxClosed { participant, stream } => {
                    engine.execute(now, op::InboxClosed(participant), &mut out);
                    notices.push(Notice::InboxClosed { participant, stream });
                }
                Request::Ask(job) => notices.push(Notice::Reply(job.run(&mut engine, now, &mut out))),
            }
            drain_effects(&mut out, &mut waiters, &mut notices, &stats);
        }
        // Disbursement items after the retail commands of this batch, at the
        // configured pace.
        if engine.disbursements().has_work() {
            let budget = pacer.take_all();
            if budget > 0 {
                engine.drive_disbursements(now, budget, config.disbursement_in_flight_max, &mut out);
            }
        } else {
            pacer.take_all(); // no saving up while idle
        }
        drain_effects(&mut out, &mut waiters, &mut notices, &stats);
        let took = intake.elapsed();
        if took > Duration::from_millis(50) {
            tracing::warn!(
                ms = took.as_millis() as u64,
                notices = notices.len(),
                bytes = out.journal.len(),
                "slow engine batch"
            );
        }
        if out.journal.is_empty() && notices.is_empty() {
            continue;
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.events.fetch_add(out.event_count as u64, Ordering::Relaxed);
        stats.reserved.store(engine.reserved_count(), Ordering::Relaxed);
        let ignored = engine.answer_stats();
        stats.answers_ignored.store(ignored.late_or_duplicate + ignored.unknown, Ordering::Relaxed);
        stats.journal_queue_depth.fetch_add(1, Ordering::Relaxed);
        // The next batch writes into buffers the journal thread sent back
        // emptied, if any, or ones as large as these (not growing from empty).
        let spare = journaling.spares.try_recv().unwrap_or_else(|_| Batch {
            journal: Vec::with_capacity(out.journal.capacity()),
            notices: Vec::with_capacity(notices.capacity()),
        });
        let batch = Batch {
            journal: std::mem::replace(&mut out.journal, spare.journal),
            notices: std::mem::replace(&mut notices, spare.notices),
        };
        if journaling.batches.send(batch).is_err() {
            // The journal thread failed: nothing can be made durable, so
            // nothing more may be acknowledged. Stop taking commands.
            tracing::error!("journal thread stopped; the engine stops too");
            return;
        }
    }
}

/// Where a payment's or return's answer goes: to its caller now if final,
/// else to the waiters of its id until the payee answers.
#[allow(clippy::too_many_arguments)] // the engine loop's locals, passed by name
fn follow_payment(
    id: EndToEndId,
    submitted: Submitted,
    waiter: Waiter,
    intake: std::time::Instant,
    waiters: &mut Waiters,
    notices: &mut Vec<Notice>,
    config: &RuntimeConfig,
    stats: &Stats,
) {
    match submitted {
        // Resolved by the final outcome of this id; ids are pending only
        // while reserved, so the waiters are bounded by the engine's
        // in-flight limits.
        Submitted::Pending => waiters.add(id, waiter, intake, config.waiters_per_id_max),
        Submitted::Final(outcome) => {
            count_outcome(stats, outcome);
            notices.push(Notice::Outcome(waiter, id, outcome, intake));
        }
    }
}

/// Callers waiting for the final outcome of pending ids, with when each
/// call came in. Every streamed or unary payment passes through here once,
/// and nearly always alone, so the first waiter is kept inline (an empty
/// `more` does not allocate) and the map uses the engine's fast seeded hash.
#[derive(Default)]
struct Waiters(HashMap<EndToEndId, Waiting, foldhash::fast::RandomState>);

struct Waiting {
    first: (Waiter, std::time::Instant),
    /// The same id submitted again while pending (a retry).
    more: Vec<(Waiter, std::time::Instant)>,
}

impl Waiters {
    /// Adds a waiter for `id`. Over `max` for one id the waiter is dropped:
    /// its caller sees the call end and can query the id's status.
    fn add(&mut self, id: EndToEndId, waiter: Waiter, intake: std::time::Instant, max: usize) {
        use std::collections::hash_map::Entry;
        match self.0.entry(id) {
            Entry::Vacant(slot) if max > 0 => {
                slot.insert(Waiting { first: (waiter, intake), more: Vec::new() });
            }
            Entry::Vacant(_) => {}
            Entry::Occupied(mut slot) => {
                let waiting = slot.get_mut();
                if 1 + waiting.more.len() < max {
                    waiting.more.push((waiter, intake));
                }
            }
        }
    }

    /// Takes every waiter of `id`, in the order they came.
    fn take(&mut self, id: &EndToEndId, mut each: impl FnMut(Waiter, std::time::Instant)) {
        if let Some(Waiting { first: (waiter, intake), more }) = self.0.remove(id) {
            each(waiter, intake);
            more.into_iter().for_each(|(waiter, intake)| each(waiter, intake));
        }
    }
}

fn drain_effects(out: &mut Output, waiters: &mut Waiters, notices: &mut Vec<Notice>, stats: &Stats) {
    for (id, outcome) in out.finals.drain(..) {
        count_outcome(stats, outcome);
        waiters.take(&id, |waiter, intake| notices.push(Notice::Outcome(waiter, id, outcome, intake)));
    }
    notices.extend(out.effects.drain(..).map(Notice::Effect));
}

fn count_outcome(stats: &Stats, outcome: Outcome) {
    match outcome {
        Outcome::Settled { .. } => stats.settled.fetch_add(1, Ordering::Relaxed),
        Outcome::Rejected { reason } => {
            stats.rejects_by_reason.count(reason);
            stats.rejected.fetch_add(1, Ordering::Relaxed)
        }
    };
}

/// The inbox streams of one participant, used round robin.
#[derive(Default)]
struct Inboxes {
    streams: Vec<(u64, mpsc::Sender<Vec<Effect>>)>,
    next: usize,
}

fn journal_loop(
    mut journal: Box<dyn Store>,
    batches: std_mpsc::Receiver<Batch>,
    spares: std_mpsc::SyncSender<Batch>,
    config: RuntimeConfig,
    stats: Arc<Stats>,
) -> Result<(), StoreError> {
    let mut inboxes: HashMap<ParticipantId, Inboxes> = HashMap::new();
    // Frames for each inbox stream, collected over one group and sent as one message.
    let mut frames: HashMap<(ParticipantId, u64), Vec<Effect>> = HashMap::new();
    let mut group = Vec::with_capacity(config.group_batches_max);
    let payment_seconds = metrics::histogram!("ponte_payment_seconds");
    let fsync_seconds = metrics::histogram!("ponte_journal_append_seconds");
    loop {
        let first = match batches.recv_timeout(STORE_CHECK) {
            Ok(batch) => batch,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                if let Err(error) = journal.check() {
                    tracing::error!(%error, "journal store unusable; the switch stops");
                    return Err(error);
                }
                continue;
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        };
        group.push(first);
        while group.len() < config.group_batches_max {
            match batches.try_recv() {
                Ok(batch) => group.push(batch),
                Err(_) => break,
            }
        }
        if group.iter().any(|b| !b.journal.is_empty()) {
            let started = std::time::Instant::now();
            let records: Vec<&[u8]> = group.iter().map(|b| b.journal.as_slice()).collect();
            let appended = journal.append(&records);
            let took = started.elapsed();
            fsync_seconds.record(took.as_secs_f64());
            if took > Duration::from_millis(50) {
                tracing::warn!(ms = took.as_millis() as u64, batches = group.len(), "slow journal append");
            }
            if let Err(error) = appended {
                // Nothing in this group is durable, so nothing is answered;
                // callers see the switch stop and can query by id after a restart.
                tracing::error!(%error, "journal append failed; the switch stops");
                return Err(error);
            }
            stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        stats.journal_queue_depth.fetch_sub(group.len() as i64, Ordering::Relaxed);
        for mut batch in group.drain(..) {
            for notice in batch.notices.drain(..) {
                if let Notice::Outcome(_, _, _, intake) = &notice {
                    payment_seconds.record(intake.elapsed().as_secs_f64());
                }
                carry_out(notice, &mut inboxes, &mut frames);
            }
            batch.journal.clear();
            // Back to the engine thread for reuse; freed if it has enough
            // or the buffer is oversized.
            if batch.journal.capacity() <= SPARE_JOURNAL_BYTES_MAX {
                let _ = spares.try_send(batch);
            }
        }
        for ((participant, stream), events) in frames.drain() {
            let Some(target) = inboxes.get(&participant).and_then(|i| i.streams.iter().find(|(s, _)| *s == stream))
            else {
                continue;
            };
            if target.1.try_send(events).is_err() {
                stats.inbox_frames_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%participant, "inbox stream is not keeping up; frames dropped (undelivered payments time out, undelivered notices are found by status or reconciliation)");
            }
        }
    }
    Ok(())
}

fn carry_out(
    notice: Notice,
    inboxes: &mut HashMap<ParticipantId, Inboxes>,
    frames: &mut HashMap<(ParticipantId, u64), Vec<Effect>>,
) {
    match notice {
        Notice::Outcome(waiter, id, outcome, _) => waiter.send(id, outcome),
        Notice::Reply(reply) => reply(),
        Notice::Effect(effect) => {
            let participant = match &effect {
                Effect::Deliver(delivery) => delivery.payee.participant,
                Effect::Settled { payee, .. } | Effect::Cancelled { payee, .. } => *payee,
                Effect::Returned(notice) => notice.to,
            };
            // Spread over the participant's inbox streams, round robin. The
            // wire encoding happens on the stream's own task, not here.
            let Some(inbox) = inboxes.get_mut(&participant) else { return };
            if inbox.streams.is_empty() {
                return;
            }
            inbox.next = (inbox.next + 1) % inbox.streams.len();
            let stream = inbox.streams[inbox.next].0;
            frames.entry((participant, stream)).or_default().push(effect);
        }
        Notice::InboxOpened { participant, stream, frames: sender } => {
            inboxes.entry(participant).or_default().streams.push((stream, sender));
        }
        Notice::InboxClosed { participant, stream } => {
            if let Some(inbox) = inboxes.get_mut(&participant) {
                inbox.streams.retain(|(s, _)| *s != stream);
                if inbox.streams.is_empty() {
                    inboxes.remove(&participant);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every payment's outcome and every effect goes through a notice, so
    /// their size is copied a few hundred thousand times a second.
    #[test]
    fn notices_stay_small() {
        assert!(std::mem::size_of::<super::Notice>() <= 96, "{}", std::mem::size_of::<super::Notice>());
    }
}
