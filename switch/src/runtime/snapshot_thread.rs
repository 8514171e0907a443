//! The snapshot thread: a second engine that follows the journal and, at an
//! interval, writes its whole state as a snapshot, then trims the journal
//! records the snapshots cover.
//!
//! It never touches the serving engine, so a snapshot costs the engine
//! thread no pause at all: the follower reads the records the journal
//! thread made durable (from the store, at its own pace), applies them as
//! a replay would, and serialises itself. The price is a second copy of
//! the engine's state in memory and the CPU to apply each record twice.
//!
//! Failures here never stop the switch: the snapshot is retried at the
//! next interval, counted in `ponte_snapshot_failures_total`, and until one
//! succeeds a restart replays a longer journal.

use super::recovery::{apply_record, restore};
use super::stats::Stats;
use crate::store::Snapshots;
use ponte_ledger::{Engine, EngineConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often, at most, the follower reads the records made durable since
/// its last look (more often when snapshots are asked for more often).
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

pub(super) struct SnapshotThread {
    pub snapshots: Box<dyn Snapshots>,
    pub config: EngineConfig,
    /// The snapshot start-up recovered from (journal records it covers; 0:
    /// none), so the follower starts where the serving engine did.
    pub start_from: u64,
    /// Write a snapshot this often (when records were added since the last).
    pub every: Duration,
    /// Snapshots kept; the journal is trimmed before the oldest of them, so
    /// a damaged newest one falls back to the previous.
    pub keep: usize,
    pub stats: Arc<Stats>,
    pub stop: Arc<AtomicBool>,
    /// How many archive ops the archive holds: a snapshot whose engine made
    /// more is not saved yet (the transfers it no longer holds must be in
    /// the archive first, or a restart from it would lose them).
    pub archive_written: Option<tokio::sync::watch::Receiver<u64>>,
    /// The snapshot's bytes, reused from one snapshot to the next (one
    /// allocation of hundreds of megabytes, not one per interval).
    pub buffer: Vec<u8>,
}

impl SnapshotThread {
    pub(super) fn run(mut self) {
        let Some((mut engine, mut applied)) = self.start() else { return };
        let mut last = Instant::now();
        let mut last_records = applied;
        while !self.sleep(FOLLOW_EVERY.min(self.every)) {
            match self.follow(&mut engine, applied) {
                Ok(to) => applied = to,
                Err(error) => {
                    tracing::error!(%error, "the snapshot follower cannot read the journal; snapshots stop");
                    self.stats.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            if last.elapsed() >= self.every && applied > last_records {
                match self.write(&engine, applied) {
                    Ok(()) => last_records = applied,
                    Err(error) => {
                        tracing::warn!(%error, records = applied, "snapshot failed; retrying at the next interval");
                        self.stats.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                last = Instant::now();
            }
        }
    }

    /// The follower's engine: the snapshot start-up recovered from (none
    /// when it replayed the whole journal) and every durable record after it.
    fn start(&mut self) -> Option<(Engine, u64)> {
        let started = match self.start_from {
            0 => Ok(Engine::new(self.config.clone())),
            records => restore(self.snapshots.as_mut(), &self.config, records),
        };
        match started.and_then(|mut engine| Ok((self.follow(&mut engine, self.start_from)?, engine))) {
            Ok((applied, engine)) => Some((engine, applied)),
            Err(error) => {
                tracing::error!(%error, "the snapshot follower cannot start; no snapshots are written");
                None
            }
        }
    }

    /// Sleeps up to `wait`; true when the runtime stops.
    fn sleep(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.stop.load(Ordering::Relaxed) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
        self.stop.load(Ordering::Relaxed)
    }

    /// Applies the records made durable since `from`; returns where it got to.
    fn follow(&mut self, engine: &mut Engine, from: u64) -> Result<u64, String> {
        let to = self.stats.journal_records.load(Ordering::Acquire);
        if to <= from {
            return Ok(from);
        }
        self.snapshots.read(from, to, &mut |_, record| apply_record(engine, record)).map_err(|e| e.to_string())?;
        Ok(to)
    }

    /// Saves a snapshot covering `records`, drops the oldest beyond
    /// `keep`, and trims the journal before the oldest kept.
    fn write(&mut self, engine: &Engine, records: u64) -> Result<(), crate::store::StoreError> {
        if let Some(written) = &self.archive_written {
            let needed = engine.archive_ops();
            let until = Instant::now() + Duration::from_secs(30);
            while *written.borrow() < needed {
                if Instant::now() > until || self.stop.load(Ordering::Relaxed) {
                    return Err(crate::store::StoreError::Damaged {
                        target: "archive".into(),
                        detail: format!("the archive holds {} ops, the snapshot needs {needed}", *written.borrow()),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let started = Instant::now();
        engine.snapshot_into(records, &mut self.buffer);
        let bytes = &self.buffer;
        self.snapshots.save(records, bytes)?;
        let took = started.elapsed();
        let listed = self.snapshots.list()?;
        for &old in listed.iter().skip(self.keep.max(1)) {
            self.snapshots.remove(old)?;
        }
        let oldest_kept = listed.iter().take(self.keep.max(1)).copied().min().unwrap_or(0);
        self.snapshots.trim(oldest_kept)?;
        self.stats.snapshots_written.fetch_add(1, Ordering::Relaxed);
        self.stats.snapshot_records.store(records, Ordering::Relaxed);
        self.stats.snapshot_bytes.store(bytes.len() as u64, Ordering::Relaxed);
        metrics::histogram!("ponte_snapshot_seconds").record(took.as_secs_f64());
        tracing::info!(
            records,
            bytes = bytes.len(),
            transfers = engine.transfer_count(),
            ms = took.as_millis() as u64,
            trimmed_before = oldest_kept,
            "snapshot written"
        );
        Ok(())
    }
}
