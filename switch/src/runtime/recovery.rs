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
use crate::store::{Archive, Snapshots, Store, StoreError};
use ponte_ledger::{Engine, EngineConfig, decode_events};

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
) -> Result<Recovered, StartError> {
    let mut snapshots = journal.snapshots();
    let (mut engine, from_snapshot, written) =
        starting_engine(snapshots.as_deref_mut(), journal.len(), journal.first(), config, archive)?;
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
/// Returns it, the journal records its snapshot covers, and the archive ops
/// written (0 without an archive).
pub(super) fn starting_engine(
    snapshots: Option<&mut dyn Snapshots>,
    journal_len: u64,
    first: u64,
    config: &EngineConfig,
    archive: Option<&dyn Archive>,
) -> Result<(Engine, u64, u64), StartError> {
    let (mut engine, from_snapshot) = snapshots
        .and_then(|snapshots| newest_usable(snapshots, config, journal_len))
        .unwrap_or_else(|| (Engine::new(config.clone()), 0));
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
    for event in decode_events(record) {
        let event = event.map_err(|e| format!("undecodable event: {e}"))?;
        engine.apply(&event);
    }
    engine.drop_stale_deadlines();
    Ok(())
}

/// The engine of the snapshot covering `records` journal records, or why not.
pub(super) fn restore(snapshots: &mut dyn Snapshots, config: &EngineConfig, records: u64) -> Result<Engine, String> {
    let bytes = snapshots.load(records).map_err(|e| e.to_string())?;
    Engine::restore(config.clone(), &bytes).map(|(engine, _)| engine).map_err(|e| e.to_string())
}

/// The newest snapshot that restores, with the journal records it covers;
/// snapshots claiming more records than the journal holds are not this
/// journal's and are skipped.
fn newest_usable(snapshots: &mut dyn Snapshots, config: &EngineConfig, journal_len: u64) -> Option<(Engine, u64)> {
    let listed = match snapshots.list() {
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
            restore(snapshots, config, records)
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
                at = %snapshots.describe(),
                %reason,
                "snapshot unusable; trying the previous one"
            ),
        }
    }
    None
}
