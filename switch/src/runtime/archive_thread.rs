//! The archive thread: writes the transfers the engine evicted (and late
//! returns against them) to the store's archive, in op order, after the
//! journal made the events behind them durable; expires what is past
//! retention; and tells waiting queries how far the archive got.
//!
//! A query that misses the engine's memory gets a mark (the archive ops
//! made so far, [`ponte_ledger::NotHeld`]) and reads the archive once it
//! has written every op below it, so a transfer is always in one of the
//! two. The write is retried until it succeeds: ops are never dropped
//! (the journal thread waits behind a full queue, which shows as the
//! switch slowing down, and the log says why).

use crate::store::{Archive, StoreError};
use ponte_ledger::{NotHeld, NumberedOp};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Batches of ops waiting for the archive thread.
pub(super) const ARCHIVE_QUEUE_MAX: usize = 256;
/// Most ops written in one transaction.
pub(super) const WRITE_OPS_MAX: usize = 65_536;
/// How long the thread gathers ops before a write, when fewer than
/// `WRITE_OPS_MAX` are waiting: fewer, larger transactions (one fsync each).
const GATHER: Duration = Duration::from_millis(100);
/// How often retention runs.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// How long a query waits for the archive to catch up before UNAVAILABLE.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

pub(super) struct ArchiveThread {
    pub archive: Arc<dyn Archive>,
    pub ops: std_mpsc::Receiver<Vec<NumberedOp>>,
    pub written: watch::Sender<u64>,
    /// Archived transfers older than this are deleted (ms).
    pub retention_ms: i64,
}

impl ArchiveThread {
    pub(super) fn run(self) {
        let mut last_expiry = Instant::now();
        loop {
            let first = match self.ops.recv_timeout(Duration::from_secs(1)) {
                Ok(ops) => Some(ops),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if let Some(mut ops) = first {
                let until = Instant::now() + GATHER;
                while ops.len() < WRITE_OPS_MAX {
                    match self.ops.recv_timeout(until.saturating_duration_since(Instant::now())) {
                        Ok(more) => ops.extend(more),
                        Err(_) => break,
                    }
                }
                self.write(&ops);
            }
            if last_expiry.elapsed() >= EXPIRE_EVERY {
                last_expiry = Instant::now();
                self.expire();
            }
        }
    }

    fn write(&self, ops: &[NumberedOp]) {
        let Some(last) = ops.last() else { return };
        let started = Instant::now();
        let mut failures = 0_u32;
        while let Err(error) = self.archive.write(ops) {
            failures += 1;
            metrics::counter!("ponte_archive_failures_total").increment(1);
            tracing::error!(%error, attempt = failures, "cannot write to the archive; retrying (acknowledgements wait behind it)");
            std::thread::sleep(Duration::from_millis(500).saturating_mul(failures.min(10)));
        }
        metrics::histogram!("ponte_archive_write_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ponte_archive_ops_total").increment(ops.len() as u64);
        self.written.send_replace(last.number + 1);
    }

    fn expire(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match self.archive.expire(now.saturating_sub(self.retention_ms)) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "archived transfers past retention deleted"),
            Err(error) => tracing::warn!(%error, "archive retention failed; retrying in a minute"),
        }
    }
}

/// What queries use to read the archive.
#[derive(Clone)]
pub struct ArchiveAccess {
    pub(super) archive: Arc<dyn Archive>,
    pub(super) written: watch::Receiver<u64>,
}

impl std::fmt::Debug for ArchiveAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveAccess").field("archive", &self.archive.describe()).finish()
    }
}

/// Why the archive could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive is catching up with the engine (more than {}s behind); retry shortly", CATCH_UP_WAIT.as_secs())]
    Behind,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ArchiveAccess {
    /// Runs `read` on the archive once it holds everything `mark` names
    /// (off the async threads: archive reads touch the disk or the cluster).
    pub async fn read<T, F>(&self, mark: NotHeld, read: F) -> Result<T, ArchiveError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Archive) -> Result<T, StoreError> + Send + 'static,
    {
        let mut written = self.written.clone();
        let caught_up =
            tokio::time::timeout(CATCH_UP_WAIT, async { written.wait_for(|&w| w >= mark.ops).await.is_ok() }).await;
        if caught_up != Ok(true) {
            return Err(ArchiveError::Behind);
        }
        let archive = self.archive.clone();
        tokio::task::spawn_blocking(move || read(archive.as_ref()))
            .await
            .map_err(|e| ArchiveError::Store(StoreError::Damaged { target: "archive".into(), detail: e.to_string() }))?
            .map_err(ArchiveError::Store)
    }
}

/// Writes the ops a start-up replay made again, from the first the archive
/// does not hold (a crash may have cut its last writes short).
pub(super) fn catch_up(archive: &dyn Archive, ops: Vec<NumberedOp>, written: u64) -> Result<(), StoreError> {
    let missing: Vec<NumberedOp> = ops.into_iter().filter(|op| op.number >= written).collect();
    archive.write(&missing)
}

/// Ops a replay gathers before writing them.
pub(super) const REPLAY_OPS_MAX: usize = WRITE_OPS_MAX;
