//! A hot standby on Cassandra/ScyllaDB: while another node holds the
//! writer lease, this one keeps an engine current by reading the records
//! the writer commits (starting from the newest snapshot), so that when
//! the lease lapses and it takes over it replays only the records
//! committed since its last read — a takeover's time follows the lease, not
//! the history.
//!
//! Fencing is unchanged: the standby reads only committed records (up to
//! the head the writer advanced with its epoch), and becomes the writer
//! only through the lease and the epoch raise of
//! [`CqlStandby::try_take_over`].
//!
//! The archive ops its engine makes while following are the writer's to
//! write; the standby keeps those the archive does not hold yet (bounded:
//! past `PENDING_OPS_MAX` it writes them itself, harmlessly, as writes are
//! idempotent) and writes what is still missing when it takes over.

use super::StartError;
use super::recovery::{Recovered, apply_record, starting_engine};
use crate::store::cql::{CqlStandby, CqlStore};
use crate::store::{Archive, Store, StoreError};
use ponte_ledger::{Engine, EngineConfig, NumberedOp};
use std::sync::Arc;

/// Archive ops a standby holds for the writer before writing them itself:
/// more than the writer's archive can be behind (its queue full of
/// eviction batches, plus the write in progress), so a standby does not
/// write the archive while it follows (that doubled the cluster's archive
/// work and could hold a takeover for the seconds such a write takes).
/// ~250 B each: ~270 MB at most, only while the writer's archive lags.
const PENDING_OPS_MAX: usize = super::archive_thread::ARCHIVE_QUEUE_MAX * ponte_ledger::archive::EVICT_BATCH_MAX
    + super::archive_thread::WRITE_OPS_MAX;

/// Follows the writer until this node takes over; returns the store, now
/// the writer's, and the engine with the tail replayed.
pub(super) fn follow_until_writer(
    mut standby: CqlStandby,
    config: &EngineConfig,
    archive: &Arc<dyn Archive>,
) -> Result<(CqlStore, Recovered), StartError> {
    let (mut engine, from_snapshot) = start_following(&standby, config, archive.as_ref())?;
    let mut applied = from_snapshot;
    let mut pending: Vec<NumberedOp> = Vec::new();
    let mut followed = 0_u64;
    // Whether the last read found records (said in the debug log when it
    // changes: tests wait for a standby to have read everything).
    let mut reading = true;
    loop {
        match follow(&standby, &mut engine, applied, &mut pending, archive.as_ref()) {
            Ok(to) => {
                followed += to - applied;
                if (to > applied) != reading {
                    reading = to > applied;
                    match reading {
                        true => tracing::debug!(from = applied, "standby: reading the writer's new records"),
                        false => tracing::debug!(record = applied, "standby: caught up with the writer"),
                    }
                }
                applied = to;
            }
            Err(error) => {
                // Records trimmed behind a newer snapshot before we read
                // them, or the cluster unreachable: start again from the
                // newest snapshot.
                tracing::warn!(%error, "standby: cannot follow the journal; reloading from the newest snapshot");
                std::thread::sleep(standby.poll_interval());
                (engine, applied) = start_following(&standby, config, archive.as_ref())?;
                followed = 0;
                pending.clear();
                continue;
            }
        }
        match standby.try_take_over()? {
            Ok(mut store) => {
                let tail = store.replay(applied, &mut |_, record| apply_record(&mut engine, record))?;
                tracing::debug!(tail, "standby: tail replayed");
                // What the old writer had not archived is written by this
                // node's archive thread, first, after it starts serving:
                // writing it here would hold the takeover for as long as
                // the old writer's archive was behind (3.5 s at 10 M
                // payments of history on one Cassandra node).
                take_unarchived(&mut engine, &mut pending, archive.as_ref())?;
                engine.check_invariants().map_err(StartError::Invariant)?;
                tracing::info!(
                    followed,
                    tail,
                    unarchived = pending.len(),
                    transfers = engine.transfer_count(),
                    "standby took over: replayed only the records committed since its last read"
                );
                let recovered = Recovered { engine, from_snapshot, replayed: tail, followed, unarchived: pending };
                return Ok((store, recovered));
            }
            Err(waiting) => {
                standby = waiting;
                std::thread::sleep(standby.poll_interval());
            }
        }
    }
}

/// The newest usable snapshot in the keyspace (or an empty engine) and the
/// journal records it covers: where following starts.
fn start_following(
    standby: &CqlStandby,
    config: &EngineConfig,
    archive: &dyn Archive,
) -> Result<(Engine, u64), StartError> {
    let mut snapshots = standby.snapshots();
    let (engine, from_snapshot, _) =
        starting_engine(Some(snapshots.as_mut()), None, standby.committed()?, standby.first()?, config, Some(archive))?;
    Ok((engine, from_snapshot))
}

/// Adds the engine's new archive ops to `pending` and keeps only those the
/// archive does not hold yet.
fn take_unarchived(
    engine: &mut Engine,
    pending: &mut Vec<NumberedOp>,
    archive: &dyn Archive,
) -> Result<(), StoreError> {
    pending.extend(engine.take_archive_ops());
    if !pending.is_empty() {
        let written = archive.written()?;
        pending.retain(|op| op.number >= written);
    }
    Ok(())
}

/// Applies the records committed since `from`; returns where it got to.
fn follow(
    standby: &CqlStandby,
    engine: &mut Engine,
    from: u64,
    pending: &mut Vec<NumberedOp>,
    archive: &dyn Archive,
) -> Result<u64, StoreError> {
    let to = standby.committed()?;
    if to > from {
        standby
            .read(from, to, &mut |_, record| apply_record(engine, record))
            .map_err(|e| StoreError::Damaged { target: standby.describe(), detail: e.to_string() })?;
    }
    take_unarchived(engine, pending, archive)?;
    if pending.len() > PENDING_OPS_MAX {
        let started = std::time::Instant::now();
        archive.write(pending)?;
        tracing::warn!(
            ops = pending.len(),
            ms = started.elapsed().as_millis() as u64,
            "standby: the writer's archive is further behind than a standby holds; wrote its ops itself"
        );
        pending.clear();
    }
    Ok(to.max(from))
}
