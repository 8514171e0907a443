//! Answers that may need the archive: a transfer's status, a past cycle's
//! transfers and movements, the original of a return. Each asks the engine
//! first; what left its memory is read from the archive once the archive
//! holds everything up to the engine's answer (see `runtime::ArchiveAccess`),
//! so the union is exact: nothing twice, nothing missing.

use super::status::to_status;
use crate::runtime::{ArchiveError, EngineHandle};
use ponte_domain::{EndToEndId, ParticipantId, TransferView};
use ponte_ledger::op;
use ponte_ledger::{ArchivedTransfer, NotHeld};
use ponte_settlement::report::{CycleHeader, SettledMovement};
use tonic::Status;

impl super::status::ToStatus for ArchiveError {
    fn to_status(self) -> Status {
        Status::unavailable(self.to_string())
    }
}

/// How long the archive keeps transfers, for NOT_FOUND messages.
pub(super) fn retention_days(engine: &EngineHandle) -> i64 {
    let config = engine.engine_config();
    config.archive_retention_ms.max(config.return_window_ms) / 86_400_000
}

/// A transfer as `caller` may see it, from memory or the archive.
pub(super) async fn status(
    engine: &EngineHandle,
    caller: ParticipantId,
    id: EndToEndId,
) -> Result<Option<TransferView>, Status> {
    let mark = match engine.ask(op::Status { caller, id }).await.map_err(to_status)? {
        Ok(view) => return Ok(view),
        Err(mark) => mark,
    };
    let Some(archive) = engine.archive() else { return Ok(None) };
    let found = archive.read(mark, move |archive| archive.transfer(&id)).await.map_err(to_status)?;
    Ok(found.and_then(|a| a.transfer.view_for(caller, a.late)))
}

/// The original of a return, from the archive (the engine no longer holds it).
pub(super) async fn original(
    engine: &EngineHandle,
    mark: NotHeld,
    id: EndToEndId,
) -> Result<Option<ArchivedTransfer>, Status> {
    let Some(archive) = engine.archive() else { return Ok(None) };
    let found = archive.read(mark, move |archive| archive.transfer(&id)).await.map_err(to_status)?;
    Ok(found.map(|a| a.transfer))
}

/// `caller`'s transfers settled in `cycle`: the archived ones, then those in memory.
pub(super) async fn cycle_transfers(
    engine: &EngineHandle,
    caller: ParticipantId,
    cycle: u64,
) -> Result<Vec<TransferView>, Status> {
    let (hot, mark) =
        engine.ask(op::CycleTransfers { caller, id: cycle }).await.map_err(to_status)?.map_err(to_status)?;
    let (Some(mark), Some(archive)) = (mark, engine.archive()) else { return Ok(hot) };
    let cycle_number = u32::try_from(cycle).map_err(|_| Status::not_found(format!("no cycle {cycle}")))?;
    let mut views = archive
        .read(mark, move |archive| {
            let mut views = Vec::new();
            archive.cycle(cycle_number, mark.head, &mut |a| {
                views.extend(a.transfer.view_for(caller, a.late));
                Ok(())
            })?;
            Ok(views)
        })
        .await
        .map_err(to_status)?;
    views.extend(hot);
    Ok(views)
}

/// The header and every movement of `cycle`, archived and in memory.
pub(super) async fn cycle_movements(
    engine: &EngineHandle,
    cycle: u64,
) -> Result<(CycleHeader, Vec<SettledMovement>), Status> {
    let (header, hot, mark) =
        engine.ask(op::CycleMovements { id: cycle }).await.map_err(to_status)?.map_err(to_status)?;
    let (Some(mark), Some(archive)) = (mark, engine.archive()) else { return Ok((header, hot)) };
    let cycle_number = u32::try_from(cycle).map_err(|_| Status::not_found(format!("no cycle {cycle}")))?;
    let mut movements = archive
        .read(mark, move |archive| {
            let mut movements = Vec::new();
            archive.cycle(cycle_number, mark.head, &mut |a| {
                movements.extend(a.transfer.movement());
                Ok(())
            })?;
            Ok(movements)
        })
        .await
        .map_err(to_status)?;
    movements.extend(hot);
    Ok((header, movements))
}
