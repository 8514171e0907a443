//! Answers that may need the archive: a transfer's status, a past cycle's
//! transfers and movements, the original of a return. Each asks the engine
//! first; what left its memory is read from the archive once the archive
//! holds everything up to the engine's answer (see `runtime::ArchiveAccess`),
//! so the union is exact: nothing twice, nothing missing.

use super::status::to_status;
use crate::runtime::{ArchiveError, EngineHandle};
use crate::store::Archived;
use ponte_domain::{EndToEndId, ParticipantId, TransferView};
use ponte_ledger::op;
use ponte_ledger::{ArchivedTransfer, NotHeld};
use ponte_settlement::report::{CycleHeader, SettledMovement};
use tonic::Status;

impl super::status::ToStatus for ArchiveError {
    fn to_status(self) -> Status {
        super::status::unavailable(self.to_string(), "ARCHIVE_UNAVAILABLE", std::time::Duration::from_secs(1))
    }
}

/// How long the archive keeps transfers, for NOT_FOUND messages.
pub(crate) fn retention_days(engine: &EngineHandle) -> i64 {
    engine.engine_config().retention_ms() / 86_400_000
}

/// Transfer `id` from the archive once it holds what `mark` names (`None`
/// without an archive: the engine then keeps every transfer in memory).
async fn archived(engine: &EngineHandle, mark: NotHeld, id: EndToEndId) -> Result<Option<Archived>, Status> {
    let Some(archive) = engine.archive() else { return Ok(None) };
    archive.read(mark, move |archive| archive.transfer(&id)).await.map_err(to_status)
}

/// A transfer as `caller` may see it, from memory or the archive.
pub(crate) async fn status(
    engine: &EngineHandle,
    caller: ParticipantId,
    id: EndToEndId,
) -> Result<Option<TransferView>, Status> {
    let mark = match engine.ask(op::Status { caller, id }).await.map_err(to_status)? {
        Ok(view) => return Ok(view),
        Err(mark) => mark,
    };
    Ok(archived(engine, mark, id).await?.and_then(|a| a.transfer.view_for(caller, a.late)))
}

/// The original of a return, from the archive (the engine no longer holds it).
pub(super) async fn original(
    engine: &EngineHandle,
    mark: NotHeld,
    id: EndToEndId,
) -> Result<Option<ArchivedTransfer>, Status> {
    Ok(archived(engine, mark, id).await?.map(|a| a.transfer))
}

/// What of `cycle` the archive holds (below the engine's head at `mark`),
/// each transfer through `pick`, followed by `hot`: the part in memory.
async fn with_archived<T: Send + 'static>(
    engine: &EngineHandle,
    cycle: u64,
    mark: Option<NotHeld>,
    hot: Vec<T>,
    pick: impl Fn(Archived) -> Option<T> + Send + 'static,
) -> Result<Vec<T>, Status> {
    let (Some(mark), Some(archive)) = (mark, engine.archive()) else { return Ok(hot) };
    let cycle_number = u32::try_from(cycle)
        .map_err(|_| super::status::error(tonic::Code::NotFound, format!("no cycle {cycle}"), "UNKNOWN_CYCLE"))?;
    let mut all = archive
        .read(mark, move |archive| {
            let mut all = Vec::new();
            archive.cycle(cycle_number, mark.head, &mut |a| {
                all.extend(pick(a));
                Ok(())
            })?;
            Ok(all)
        })
        .await
        .map_err(to_status)?;
    all.extend(hot);
    Ok(all)
}

/// A page of `caller`'s transfers settled in `cycle`, archived and in
/// memory: the first `limit` after position `after`, in position order
/// (the order the switch recorded them), each with its position. The
/// archived ones (below the engine's head) come first, then those in
/// memory; the union is exact whatever moves from memory to the archive
/// between two pages, because a transfer keeps its position. A page reads
/// from where the last one ended and stops once full, so reading a cycle
/// by pages costs about what one read of it does, however large it is.
pub(super) async fn cycle_transfers_page(
    engine: &EngineHandle,
    caller: ParticipantId,
    cycle: u64,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, TransferView)>, Status> {
    let (hot, mark) = engine
        .ask(op::CycleTransfers { caller, id: cycle, after, limit })
        .await
        .map_err(to_status)?
        .map_err(to_status)?;
    let from = after.map_or(0, |after| after.saturating_add(1));
    let (Some(mark), Some(archive)) = (mark, engine.archive()) else { return Ok(hot) };
    if from >= mark.head {
        return Ok(hot);
    }
    let cycle_number = u32::try_from(cycle)
        .map_err(|_| super::status::error(tonic::Code::NotFound, format!("no cycle {cycle}"), "UNKNOWN_CYCLE"))?;
    let mut page = archive
        .read(mark, move |archive| {
            let mut page: Vec<(u64, TransferView)> = Vec::new();
            archive.cycle_from(cycle_number, from, mark.head, &mut |a| {
                let position = a.transfer.position;
                page.extend(a.transfer.view_for(caller, a.late).map(|view| (position, view)));
                Ok(page.len() < limit)
            })?;
            Ok(page)
        })
        .await
        .map_err(to_status)?;
    page.extend(hot);
    page.truncate(limit);
    Ok(page)
}

/// The header and every movement of `cycle`, archived and in memory.
pub(crate) async fn cycle_movements(
    engine: &EngineHandle,
    cycle: u64,
) -> Result<(CycleHeader, Vec<SettledMovement>), Status> {
    let (header, hot, mark) =
        engine.ask(op::CycleMovements { id: cycle }).await.map_err(to_status)?.map_err(to_status)?;
    let movements = with_archived(engine, cycle, mark, hot, |a| a.transfer.movement()).await?;
    Ok((header, movements))
}
