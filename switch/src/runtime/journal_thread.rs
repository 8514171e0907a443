//! The journal thread: appends batches in groups with one fsync each,
//! then answers callers and pushes inbox frames.

use super::RuntimeConfig;
use super::handoff::{Batch, Notice, SPARE_JOURNAL_BYTES_MAX};
use super::requests::InboxChange;
use super::stats::Stats;
use crate::store::{Store, StoreError};
use ponte_domain::ParticipantId;
use ponte_ledger::Effect;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often an idle journal thread asks its store whether it can still
/// write (a Cassandra writer that lost its lease must stop promptly).
pub(super) const STORE_CHECK: Duration = Duration::from_secs(1);

/// How often a group is offered again to a store that cannot take it now.
const STORE_RETRY: Duration = Duration::from_millis(500);

/// The store cannot make records durable now: said once in the log, and in
/// `ponte_store_available` (0) and to every caller (UNAVAILABLE) until it can.
fn store_away(stats: &Stats, error: &StoreError) {
    if !stats.store_unavailable.swap(true, Ordering::Relaxed) {
        tracing::error!(%error, "the journal store has no quorum or cannot be reached: nothing is acknowledged, \
             callers get UNAVAILABLE; retrying until it is back");
    }
}

fn store_back(stats: &Stats) {
    if stats.store_unavailable.swap(false, Ordering::Relaxed) {
        tracing::warn!("the journal store is back: acknowledging again");
    }
}

/// Who gets what once a group is durable: callers' answers, and inbox
/// frames collected per stream over the group, sent as one message each.
#[derive(Default)]
struct Delivery {
    inboxes: HashMap<ParticipantId, Inboxes>,
    frames: HashMap<(ParticipantId, u64), Vec<Effect>>,
    /// The archive thread's queue (waits when full: ops are never dropped).
    archive: Option<std_mpsc::SyncSender<Vec<ponte_ledger::NumberedOp>>>,
}

impl Delivery {
    fn carry_out(&mut self, notice: Notice) {
        match notice {
            Notice::Outcome(waiter, id, outcome, _) => waiter.send(id, outcome),
            Notice::Reply(reply) => reply(),
            Notice::Archive(ops) => {
                if let Some(archive) = &self.archive {
                    let _ = archive.send(ops);
                }
            }
            Notice::Effect(effect) => self.collect(effect),
            Notice::Inbox(InboxChange::Opened { participant, stream, frames }) => {
                self.inboxes.entry(participant).or_default().streams.push((stream, frames));
            }
            Notice::Inbox(InboxChange::Closed { participant, stream }) => {
                if let Some(inbox) = self.inboxes.get_mut(&participant) {
                    inbox.streams.retain(|(s, _)| *s != stream);
                    if inbox.streams.is_empty() {
                        self.inboxes.remove(&participant);
                    }
                }
            }
        }
    }

    /// Adds a frame for one of the participant's inbox streams, round
    /// robin. The wire encoding happens on the stream's own task, not here.
    fn collect(&mut self, effect: Effect) {
        let participant = effect.participant();
        let Some(inbox) = self.inboxes.get_mut(&participant) else { return };
        if inbox.streams.is_empty() {
            return;
        }
        inbox.next = (inbox.next + 1) % inbox.streams.len();
        let stream = inbox.streams[inbox.next].0;
        self.frames.entry((participant, stream)).or_default().push(effect);
    }

    /// Sends each stream the frames collected for it.
    fn send_frames(&mut self, stats: &Stats) {
        for ((participant, stream), events) in self.frames.drain() {
            let Some(inbox) = self.inboxes.get(&participant) else { continue };
            let Some((_, target)) = inbox.streams.iter().find(|(s, _)| *s == stream) else { continue };
            if target.try_send(events).is_err() {
                stats.inbox_frames_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%participant, "inbox stream is not keeping up; frames dropped (undelivered payments time out, undelivered notices are found by status or reconciliation)");
            }
        }
    }
}

/// The inbox streams of one participant, used round robin.
#[derive(Default)]
struct Inboxes {
    streams: Vec<(u64, mpsc::Sender<Vec<Effect>>)>,
    next: usize,
}

pub(super) fn journal_loop(
    mut journal: Box<dyn Store>,
    batches: std_mpsc::Receiver<Batch>,
    spares: std_mpsc::SyncSender<Batch>,
    archive: Option<std_mpsc::SyncSender<Vec<ponte_ledger::NumberedOp>>>,
    config: RuntimeConfig,
    stats: Arc<Stats>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), StoreError> {
    let mut delivery = Delivery { archive, ..Delivery::default() };
    let mut group = Vec::with_capacity(config.group_batches_max);
    let payment_seconds = metrics::histogram!("ponte_payment_seconds");
    let fsync_seconds = metrics::histogram!("ponte_journal_append_seconds");
    loop {
        let first = match batches.recv_timeout(STORE_CHECK) {
            Ok(batch) => batch,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                match journal.check() {
                    Ok(()) => store_back(&stats),
                    Err(error @ StoreError::Unavailable { .. }) => store_away(&stats, &error),
                    Err(error) => {
                        tracing::error!(%error, "journal store unusable; the switch stops");
                        return Err(error);
                    }
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
        // A store that cannot make records durable now (no quorum) holds
        // this group, unanswered, and is asked again until it can; callers
        // meanwhile get UNAVAILABLE at the door (EngineHandle::try_send).
        loop {
            match append_group(journal.as_mut(), &group, &stats, &fsync_seconds) {
                Ok(()) => break,
                Err(error @ StoreError::Unavailable { .. }) if !stop.load(Ordering::Relaxed) => {
                    store_away(&stats, &error);
                    std::thread::sleep(STORE_RETRY);
                }
                Err(error) => return Err(error),
            }
        }
        store_back(&stats);
        stats.journal_queue_depth.fetch_sub(group.len() as i64, Ordering::Relaxed);
        for mut batch in group.drain(..) {
            for notice in batch.notices.drain(..) {
                if let Notice::Outcome(_, _, _, intake) = &notice {
                    payment_seconds.record(intake.elapsed().as_secs_f64());
                }
                delivery.carry_out(notice);
            }
            batch.journal.clear();
            // Back to the engine thread for reuse; freed if it has enough
            // or the buffer is oversized.
            if batch.journal.capacity() <= SPARE_JOURNAL_BYTES_MAX {
                let _ = spares.try_send(batch);
            }
        }
        delivery.send_frames(&stats);
    }
    Ok(())
}

/// Makes a group of batches durable in one append (one fsync). An error
/// stops the switch: nothing in the group is durable, so nothing is
/// answered; callers see the switch stop and can query by id after a
/// restart.
fn append_group(
    journal: &mut dyn Store,
    group: &[Batch],
    stats: &Stats,
    fsync_seconds: &metrics::Histogram,
) -> Result<(), StoreError> {
    if group.iter().all(|b| b.journal.is_empty()) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let records: Vec<&[u8]> = group.iter().map(|b| b.journal.as_slice()).collect();
    let appended = journal.append(&records);
    let took = started.elapsed();
    fsync_seconds.record(took.as_secs_f64());
    if took > Duration::from_millis(50) {
        tracing::warn!(ms = took.as_millis() as u64, batches = group.len(), "slow journal append");
    }
    if let Err(error) = appended {
        if !matches!(error, StoreError::Unavailable { .. }) {
            tracing::error!(%error, "journal append failed; the switch stops");
        }
        return Err(error);
    }
    stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    stats.journal_records.store(journal.len(), Ordering::Release);
    Ok(())
}
