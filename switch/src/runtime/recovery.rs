//! Start-up: the newest usable snapshot, then the journal after it.
//!
//! A snapshot that cannot be read, fails its checksum or restores into a
//! ledger that breaks an invariant is skipped with a warning naming it and
//! why, and the next older one is tried; with none usable the whole journal
//! is replayed, which is only possible while nothing was trimmed. Never a
//! wrong state: a journal trimmed past every usable snapshot refuses to
//! start and says so.

use super::StartError;
use super::archive_thread::{REPLAY_OPS_MAX, catch_up};
use crate::store::{Archive, SnapshotDir, Snapshots, Store, StoreError};
use ponte_ledger::{Engine, EngineConfig};

/// The engine rebuilt, and how.
pub(super) struct Recovered {
    pub engine: Engine,
    /// Journal records the snapshot it started from covered (0: none).
    pub from_snapshot: u64,
    /// Records replayed after it.
    pub replayed: u64,
    /// Records a standby applied while following the writer, before it
    /// took over (then `replayed` is only what came after its last read).
    pub followed: u64,
    /// Archive ops made before the start that the archive does not hold
    /// yet, for the archive thread to write first (queries that need them
    /// wait for them, as for any op).
    pub unarchived: Vec<ponte_ledger::NumberedOp>,
}

/// Rebuilds the engine; with an archive, the transfers the replayed
/// journal evicts are written to it again where it had not recorded them
/// (and the engine keeps making archive ops from then on).
pub(super) fn recover(
    journal: &mut dyn Store,
    config: &EngineConfig,
    archive: Option<&dyn Archive>,
    preloaded: Option<Preload>,
) -> Result<Recovered, StartError> {
    let mut snapshots = journal.snapshots();
    let preloaded = preloaded.map(Preload::take);
    let (mut engine, from_snapshot, written) =
        starting_engine(snapshots.as_deref_mut(), preloaded, journal.len(), journal.first(), config, archive)?;
    let flush = |engine: &mut Engine, at_least: usize| -> Result<(), String> {
        match archive {
            Some(archive) if engine.pending_archive_ops() >= at_least => {
                catch_up(archive, engine.take_archive_ops(), written).map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    };
    let replayed = journal.replay(from_snapshot, &mut |_, record| {
        apply_record(&mut engine, record)?;
        flush(&mut engine, REPLAY_OPS_MAX)
    })?;
    flush(&mut engine, 1).map_err(|detail| StoreError::Damaged { target: "archive".into(), detail })?;
    engine.check_invariants().map_err(StartError::Invariant)?;
    Ok(Recovered { engine, from_snapshot, replayed, followed: 0, unarchived: Vec::new() })
}

/// The engine a start replays the journal into: the newest usable snapshot
/// (or an empty engine), refused if the journal was trimmed past it or the
/// archive lacks ops it made; with an archive it keeps making archive ops.
/// `preloaded` is what a [`Preload`] found while the journal opened: the
/// newest usable snapshot, used if this journal holds the records it
/// covers, or none (it said why; the folder is not read twice).
/// Returns it, the journal records its snapshot covers, and the archive ops
/// written (0 without an archive).
pub(super) fn starting_engine(
    snapshots: Option<&mut dyn Snapshots>,
    preloaded: Option<Option<(Engine, u64)>>,
    journal_len: u64,
    first: u64,
    config: &EngineConfig,
    archive: Option<&dyn Archive>,
) -> Result<(Engine, u64, u64), StartError> {
    let restored = match preloaded {
        Some(Some((engine, records))) if records <= journal_len => Some((engine, records)),
        Some(None) => None,
        // Not preloaded, or a snapshot this journal does not reach: look again.
        _ => snapshots.and_then(|snapshots| {
            let at = snapshots.describe();
            newest_usable(snapshots.list(), &mut |records| snapshots.load(records), &at, config, journal_len)
        }),
    };
    let (mut engine, from_snapshot) = restored.unwrap_or_else(|| (Engine::new(config.clone()), 0));
    if from_snapshot < first {
        return Err(StartError::Trimmed { first, snapshot: from_snapshot });
    }
    let Some(archive) = archive else { return Ok((engine, from_snapshot, 0)) };
    let written = archive.written()?;
    if written < engine.archive_ops() {
        return Err(StartError::ArchiveBehind { written, snapshot: engine.archive_ops() });
    }
    engine.keep_archive_ops();
    Ok((engine, from_snapshot, written))
}

pub(super) fn apply_record(engine: &mut Engine, record: &[u8]) -> Result<(), String> {
    engine.apply_record(record).map_err(|e| format!("undecodable event: {e}"))?;
    engine.drop_stale_deadlines();
    Ok(())
}

/// The newest usable snapshot in a folder of snapshot files, restored on a
/// thread of its own while the journal file opens: after a crash redb
/// checks the whole journal file before it opens (~0.7 s for a 1 GB
/// journal), and a restore of a large duplicate window takes as long or
/// longer, so on two cores a restart waits for the longer of the two, not
/// their sum. Whether the journal holds the records the snapshot covers is
/// checked once it is open ([`starting_engine`]).
pub(crate) struct Preload(std::thread::JoinHandle<Option<(Engine, u64)>>);

impl Preload {
    pub(crate) fn spawn(files: SnapshotDir, config: EngineConfig) -> Result<Preload, StartError> {
        let thread = std::thread::Builder::new().name("ponte-preload".into()).spawn(move || {
            let at = files.path().display().to_string();
            newest_usable(files.list(), &mut |records| files.load(records), &at, &config, u64::MAX)
        });
        thread.map(Preload).map_err(StartError::Thread)
    }

    /// The snapshot restored, if one was (a thread that panicked restored none).
    fn take(self) -> Option<(Engine, u64)> {
        self.0.join().ok().flatten()
    }
}

/// The engine of the snapshot covering `records` journal records, or why not.
pub(super) fn restore(snapshots: &mut dyn Snapshots, config: &EngineConfig, records: u64) -> Result<Engine, String> {
    restore_loaded(config, snapshots.load(records))
}

fn restore_loaded(config: &EngineConfig, loaded: Result<Vec<u8>, StoreError>) -> Result<Engine, String> {
    let bytes = loaded.map_err(|e| e.to_string())?;
    Engine::restore(config.clone(), &bytes).map(|(engine, _)| engine).map_err(|e| e.to_string())
}

/// The newest snapshot that restores, with the journal records it covers:
/// `listed` newest first, each loaded by `load` from `at`; snapshots
/// claiming more records than the journal holds are not this journal's
/// and are skipped.
fn newest_usable(
    listed: Result<Vec<u64>, StoreError>,
    load: &mut dyn FnMut(u64) -> Result<Vec<u8>, StoreError>,
    at: &str,
    config: &EngineConfig,
    journal_len: u64,
) -> Option<(Engine, u64)> {
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => {
            tracing::warn!(%error, "cannot list snapshots; replaying the journal from its start");
            return None;
        }
    };
    for records in listed {
        let started = std::time::Instant::now();
        let restored = if records > journal_len {
            Err(format!("it covers {records} journal records but the journal holds {journal_len}"))
        } else {
            restore_loaded(config, load(records))
        };
        match restored {
            Ok(engine) => {
                tracing::info!(
                    snapshot = records,
                    transfers = engine.transfer_count(),
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot loaded"
                );
                return Some((engine, records));
            }
            Err(reason) => tracing::warn!(
                snapshot = records,
                %at,
                %reason,
                "snapshot unusable; trying the previous one"
            ),
        }
    }
    None
}
