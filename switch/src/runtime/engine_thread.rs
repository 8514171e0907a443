//! The engine thread: takes requests in batches, executes them on the
//! engine, and hands each batch to the journal thread.

use super::RuntimeConfig;
use super::handoff::{Batch, Journaling, Notice};
use super::requests::{InboxChange, Request, Waiter};
use super::stats::Stats;
use super::waiters::Waiters;
use ponte_domain::{EndToEndId, TimestampMs};
use ponte_ledger::{Engine, Outcome, Output, Submitted, op};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// Wall-clock milliseconds, never going backwards within this process.
pub(super) struct Clock {
    pub(super) last: TimestampMs,
}

impl Clock {
    pub(super) fn now(&mut self) -> TimestampMs {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as TimestampMs)
            .unwrap_or(0);
        self.last = self.last.max(wall);
        self.last
    }
}

/// Longest the engine thread idles while disbursement items wait to start.
pub(super) const DISBURSEMENT_TICK: Duration = Duration::from_millis(5);

/// A token bucket for the disbursement pace: `per_s` tokens a second, at
/// most a tenth of a second's worth saved up.
pub(super) struct Pacer {
    pub(super) per_s: f64,
    pub(super) tokens: f64,
    pub(super) last: std::time::Instant,
}

impl Pacer {
    pub(super) fn new(per_s: u32) -> Pacer {
        Pacer { per_s: f64::from(per_s), tokens: 0.0, last: std::time::Instant::now() }
    }

    pub(super) fn take_all(&mut self) -> usize {
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
pub(super) const STOP_CHECK: Duration = Duration::from_millis(200);

pub(super) fn engine_loop(
    engine: Engine,
    requests: mpsc::Receiver<Request>,
    journaling: Journaling,
    tokio: tokio::runtime::Handle,
    config: RuntimeConfig,
    stats: Arc<Stats>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut thread = EngineThread {
        clock: Clock { last: 0 },
        pacer: Pacer::new(config.disbursement_per_s),
        waiters: Waiters::default(),
        out: Output::default(),
        pending: Vec::with_capacity(config.batch_size_max),
        notices: Vec::new(),
        engine,
        requests,
        journaling,
        tokio,
        config,
        stats,
    };
    let mut open = true;
    while open && !stop.load(Ordering::Relaxed) {
        open = thread.gather();
        thread.execute_batch();
        if thread.hand_over().is_err() {
            // The journal thread failed: nothing can be made durable, so
            // nothing more may be acknowledged. Stop taking commands.
            tracing::error!("journal thread stopped; the engine stops too");
            return;
        }
    }
}

/// The engine thread's state between batches; its buffers are reused.
struct EngineThread {
    engine: Engine,
    requests: mpsc::Receiver<Request>,
    journaling: Journaling,
    tokio: tokio::runtime::Handle,
    config: RuntimeConfig,
    stats: Arc<Stats>,
    clock: Clock,
    pacer: Pacer,
    waiters: Waiters,
    out: Output,
    /// The requests of the batch being executed.
    pending: Vec<Request>,
    /// What the journal thread carries out once the batch is durable.
    notices: Vec<Notice>,
}

impl EngineThread {
    /// Takes the next batch of requests: waits for the first (or the next
    /// payee deadline, at most STOP_CHECK so a stop request is seen
    /// promptly), then takes what is queued up to the batch bound. False
    /// once every sender is gone.
    fn gather(&mut self) -> bool {
        let mut open = true;
        match self.requests.try_recv() {
            Ok(request) => self.pending.push(request),
            Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            Err(mpsc::error::TryRecvError::Empty) => {
                let now = self.clock.now();
                let mut wait = self.engine.next_deadline().map_or(STOP_CHECK, |d| {
                    Duration::from_millis(u64::try_from(d.saturating_sub(now)).unwrap_or(0)).min(STOP_CHECK)
                });
                if self.engine.disbursements().has_work() {
                    wait = wait.min(DISBURSEMENT_TICK);
                }
                if !wait.is_zero() {
                    let requests = &mut self.requests;
                    match self.tokio.block_on(async { tokio::time::timeout(wait, requests.recv()).await }) {
                        Ok(Some(request)) => self.pending.push(request),
                        Ok(None) => open = false,
                        Err(_elapsed) => {}
                    }
                }
            }
        }
        while self.pending.len() < self.config.batch_size_max {
            match self.requests.try_recv() {
                Ok(request) => self.pending.push(request),
                Err(_) => break,
            }
        }
        open
    }

    /// Executes the gathered requests, then disbursement items at their pace.
    fn execute_batch(&mut self) {
        let now = self.clock.now();
        let intake = std::time::Instant::now();
        self.out.clear();
        self.engine.expire(now, &mut self.out);
        self.stats.commands.fetch_add(self.pending.len() as u64, Ordering::Relaxed);
        let mut pending = std::mem::take(&mut self.pending);
        let mut batch = pending.drain(..);
        while let Some(request) = batch.next() {
            if let Some(ahead) = batch.as_slice().get(Engine::PREFETCH_AHEAD - 1) {
                ahead.prefetch(&self.engine);
            }
            self.execute_one(request, now, intake);
        }
        drop(batch);
        self.pending = pending;
        // Disbursement items after the retail commands of this batch, at the
        // configured pace.
        if self.engine.disbursements().has_work() {
            let budget = self.pacer.take_all();
            if budget > 0 {
                let in_flight_max = self.config.disbursement_in_flight_max;
                self.engine.drive_disbursements(now, budget, in_flight_max, &mut self.out);
            }
        } else {
            self.pacer.take_all(); // no saving up while idle
        }
        drain_effects(&mut self.out, &mut self.waiters, &mut self.notices, &self.stats);
        let took = intake.elapsed();
        if took > Duration::from_millis(50) {
            tracing::warn!(
                ms = took.as_millis() as u64,
                notices = self.notices.len(),
                bytes = self.out.journal.len(),
                "slow engine batch"
            );
        }
    }

    fn execute_one(&mut self, request: Request, now: TimestampMs, intake: std::time::Instant) {
        let (engine, out, notices) = (&mut self.engine, &mut self.out, &mut self.notices);
        match request {
            Request::Submit(submit, waiter) => {
                let id = submit.0.id;
                let submitted = engine.execute(now, submit, out);
                self.follow_payment(id, submitted, waiter, intake);
            }
            Request::Return(give_back, reply) => {
                let submitted = engine.execute(now, give_back, out);
                if let Submitted::Final(outcome) = submitted {
                    count_outcome(&self.stats, outcome);
                }
                notices.push(Notice::Reply(Box::new(move || {
                    let _ = reply.send(submitted);
                })));
            }
            Request::Answer(answer) => engine.execute(now, answer, out),
            Request::Inbox(change) => {
                match &change {
                    InboxChange::Opened { participant, .. } => engine.execute(now, op::InboxOpened(*participant), out),
                    InboxChange::Closed { participant, .. } => engine.execute(now, op::InboxClosed(*participant), out),
                }
                notices.push(Notice::Inbox(change));
            }
            Request::Ask(job) => notices.push(Notice::Reply(job.run(engine, now, out))),
        }
        drain_effects(&mut self.out, &mut self.waiters, &mut self.notices, &self.stats);
    }

    /// Where a payment's or return's answer goes: to its caller now if
    /// final, else to the waiters of its id until the payee answers.
    fn follow_payment(&mut self, id: EndToEndId, submitted: Submitted, waiter: Waiter, intake: std::time::Instant) {
        match submitted {
            // Resolved by the final outcome of this id; ids are pending only
            // while reserved, so the waiters are bounded by the engine's
            // in-flight limits.
            Submitted::Pending => self.waiters.add(id, waiter, intake, self.config.waiters_per_id_max),
            Submitted::Final(outcome) => {
                count_outcome(&self.stats, outcome);
                self.notices.push(Notice::Outcome(waiter, id, outcome, intake));
            }
            Submitted::NotHeld(_) => unreachable!("only a return asks for the archive"),
        }
    }

    /// Hands the executed batch to the journal thread; Err once that
    /// thread has stopped.
    fn hand_over(&mut self) -> Result<(), ()> {
        if self.engine.pending_archive_ops() > 0 {
            self.notices.push(Notice::Archive(self.engine.take_archive_ops()));
        }
        let (out, notices, stats) = (&mut self.out, &mut self.notices, &self.stats);
        if out.journal.is_empty() && notices.is_empty() {
            return Ok(());
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.events.fetch_add(out.event_count as u64, Ordering::Relaxed);
        stats.reserved.store(self.engine.reserved_count(), Ordering::Relaxed);
        stats.transfers_held.store(self.engine.transfer_count() as u64, Ordering::Relaxed);
        stats.transfers_in_window.store(self.engine.window_count() as u64, Ordering::Relaxed);
        stats.transfers_evicted.store(self.engine.evicted(), Ordering::Relaxed);
        stats.envelope_items_archived.store(self.engine.disbursements().archived_items(), Ordering::Relaxed);
        let ignored = self.engine.answer_stats();
        stats.answers_ignored.store(ignored.late_or_duplicate + ignored.unknown, Ordering::Relaxed);
        stats.journal_queue_depth.fetch_add(1, Ordering::Relaxed);
        // The next batch writes into buffers the journal thread sent back
        // emptied, if any, or ones as large as these (not growing from empty).
        let spare = self.journaling.spares.try_recv().unwrap_or_else(|_| Batch {
            journal: Vec::with_capacity(out.journal.capacity()),
            notices: Vec::with_capacity(notices.capacity()),
        });
        let batch = Batch {
            journal: std::mem::replace(&mut out.journal, spare.journal),
            notices: std::mem::replace(notices, spare.notices),
        };
        self.journaling.batches.send(batch).map_err(|_| ())
    }
}

pub(super) fn drain_effects(out: &mut Output, waiters: &mut Waiters, notices: &mut Vec<Notice>, stats: &Stats) {
    for (id, outcome) in out.finals.drain(..) {
        count_outcome(stats, outcome);
        waiters.take(&id, |waiter, intake| notices.push(Notice::Outcome(waiter, id, outcome, intake)));
    }
    notices.extend(out.effects.drain(..).map(Notice::Effect));
}

pub(super) fn count_outcome(stats: &Stats, outcome: Outcome) {
    match outcome {
        Outcome::Settled { .. } => stats.settled.fetch_add(1, Ordering::Relaxed),
        Outcome::Rejected { reason } => {
            stats.rejects_by_reason.count(reason);
            stats.rejected.fetch_add(1, Ordering::Relaxed)
        }
    };
}
