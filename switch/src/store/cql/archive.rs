//! The archive on Cassandra / ScyllaDB: transfers that left the engine's
//! memory, in tables keyed for the queries that read them.
//!
//! ```text
//! archive_ids            ((stream, minute, shard), id) -> position, body    GetStatus, returns
//! archive_pieces         ((stream, cycle, bucket), first) -> body          a past cycle's transfers
//! archive_cycle_buckets  ((stream, cycle), bucket)                          which buckets a cycle has
//! archive_late           ((stream, original), id) -> amount                 returns after archiving
//! archive_late_cycle     ((stream, cycle), original, id) -> amount          the same, by the original's cycle
//! archive_written        (stream) -> written                                archive ops written
//! archive_envelope_items ((stream, number), first) -> body                 a complete envelope's items
//! ```
//! Written for throughput: the rows of one write that share a partition go
//! as one unlogged single-partition batch (one mutation), so the cluster
//! sees tens of mutations per write of thousands of transfers rather than
//! two per transfer (which bounded a single node here to ~4,600 archived
//! transfers/s, far below the switch's rate). An id's partition is the
//! minute its id carries and one of [`ID_SHARDS`] shards of its hash, so
//! GetStatus computes it from the id and reads one row; a cycle's
//! transfers are kept as LZ4-compressed pieces (up to
//! [`PIECE_TRANSFERS_MAX`] transfers, in position order) per bucket of
//! 65,536 positions, read in order.
//!
//! Every row is written with a TTL of the retention (the cluster expires
//! them; nothing to delete). Writes are idempotent: the same op writes the
//! same id row, and a piece written again after a crash or a takeover
//! holds the same transfers (a reader skips positions it has already
//! given), so a replay rewrites what may be missing and a fenced writer's
//! late writes change nothing.

use super::{Shared, cql_error, retry};
use crate::store::{Archive, Archived, StoreError};
use futures::{StreamExt, TryStreamExt};
use ponte_domain::{Amount, EndToEndId, TimestampMs};
use ponte_ledger::{ArchiveOp, ArchivedTransfer, ENVELOPE_PIECE_ITEMS, ItemView, NumberedOp};
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Positions per cycle partition.
const BUCKET_BITS: u32 = 16;
/// Writes (batches, pieces, rows) in flight at once while writing ops.
const WRITES_IN_FLIGHT: usize = 32;
/// Partitions per minute of ids: at 100,000 payments/s one holds ~94k
/// rows (~20 MB), under the ~100 MB a partition should stay below.
const ID_SHARDS: u64 = 64;
/// Id rows per single-partition batch.
const ID_ROWS_PER_BATCH: usize = 256;
/// Transfers per piece of a cycle bucket (~150 B each before LZ4).
const PIECE_TRANSFERS_MAX: usize = 4_096;

pub(super) struct Statements {
    insert_id: PreparedStatement,
    insert_piece: PreparedStatement,
    insert_bucket: PreparedStatement,
    insert_late: PreparedStatement,
    insert_late_cycle: PreparedStatement,
    read_late_cycle: PreparedStatement,
    write_written: PreparedStatement,
    read_written: PreparedStatement,
    read_id: PreparedStatement,
    read_late: PreparedStatement,
    read_buckets: PreparedStatement,
    read_pieces: PreparedStatement,
    insert_envelope_piece: PreparedStatement,
    read_envelope_pieces: PreparedStatement,
}

pub(super) async fn prepare_statements(
    prepare: impl AsyncFn(&str, Consistency, bool) -> Result<PreparedStatement, StoreError>,
) -> Result<Statements, StoreError> {
    use Consistency::Quorum;
    Ok(Statements {
        insert_id: prepare(
            "INSERT INTO {ks}.archive_ids (stream, minute, shard, id, position, body) VALUES (?, ?, ?, ?, ?, ?) \
             USING TTL ?",
            Quorum,
            true,
        )
        .await?,
        insert_piece: prepare(
            "INSERT INTO {ks}.archive_pieces (stream, cycle, bucket, first, body) VALUES (?, ?, ?, ?, ?) USING TTL ?",
            Quorum,
            true,
        )
        .await?,
        insert_bucket: prepare(
            "INSERT INTO {ks}.archive_cycle_buckets (stream, cycle, bucket) VALUES (?, ?, ?) USING TTL ?",
            Quorum,
            true,
        )
        .await?,
        insert_late: prepare(
            "INSERT INTO {ks}.archive_late (stream, original, id, amount) VALUES (?, ?, ?, ?) USING TTL ?",
            Quorum,
            true,
        )
        .await?,
        insert_late_cycle: prepare(
            "INSERT INTO {ks}.archive_late_cycle (stream, cycle, original, id, amount) VALUES (?, ?, ?, ?, ?) \
             USING TTL ?",
            Quorum,
            true,
        )
        .await?,
        read_late_cycle: prepare(
            "SELECT original, amount FROM {ks}.archive_late_cycle WHERE stream = ? AND cycle = ?",
            Quorum,
            true,
        )
        .await?,
        write_written: prepare("INSERT INTO {ks}.archive_written (stream, written) VALUES (?, ?)", Quorum, true)
            .await?,
        read_written: prepare("SELECT written FROM {ks}.archive_written WHERE stream = ?", Quorum, true).await?,
        read_id: prepare(
            "SELECT body FROM {ks}.archive_ids WHERE stream = ? AND minute = ? AND shard = ? AND id = ?",
            Quorum,
            true,
        )
        .await?,
        read_late: prepare("SELECT amount FROM {ks}.archive_late WHERE stream = ? AND original = ?", Quorum, true)
            .await?,
        read_buckets: prepare(
            "SELECT bucket FROM {ks}.archive_cycle_buckets WHERE stream = ? AND cycle = ?",
            Quorum,
            true,
        )
        .await?,
        read_pieces: prepare(
            "SELECT body FROM {ks}.archive_pieces WHERE stream = ? AND cycle = ? AND bucket = ? AND first < ?",
            Quorum,
            true,
        )
        .await?,
        insert_envelope_piece: prepare(
            "INSERT INTO {ks}.archive_envelope_items (stream, number, first, body) VALUES (?, ?, ?, ?) USING TTL ?",
            Quorum,
            true,
        )
        .await?,
        read_envelope_pieces: prepare(
            "SELECT body FROM {ks}.archive_envelope_items WHERE stream = ? AND number = ? AND first >= ? AND first < ?",
            Quorum,
            true,
        )
        .await?,
    })
}

/// The archive of one stream.
pub(super) struct CqlArchive {
    pub(super) shared: Arc<Shared>,
    /// The store's runtime (`None` only while dropping): queries hold the
    /// archive on async threads, where the last owner must not block on
    /// shutting it down.
    pub(super) runtime: Option<Arc<tokio::runtime::Runtime>>,
    /// Row TTL in seconds: the retention.
    pub(super) ttl_s: i32,
}

/// The archive of the store's stream, its rows kept `retention_ms`.
pub(super) fn open(
    shared: &Arc<Shared>,
    runtime: &Arc<tokio::runtime::Runtime>,
    retention_ms: i64,
) -> Arc<dyn Archive> {
    // Cassandra's TTL is at most 20 years.
    let ttl_s = (retention_ms / 1_000).clamp(1, 20 * 365 * 86_400) as i32;
    Arc::new(CqlArchive { shared: shared.clone(), runtime: Some(runtime.clone()), ttl_s })
}

/// An id's partition in `archive_ids`: the minute its id carries and a
/// shard of its hash.
fn id_partition(id: &EndToEndId) -> (i64, i32) {
    (i64::from(crate::store::id_minute(id)), (crate::store::id_hash(id) % ID_SHARDS) as i32)
}

/// An id row: id, position, body.
type IdRow<'a> = (&'a str, i64, &'a [u8]);

/// One write of a batch of ops.
enum Row<'a> {
    /// Id rows of one partition.
    Ids {
        minute: i64,
        shard: i32,
        rows: Vec<IdRow<'a>>,
    },
    Piece {
        cycle: i32,
        bucket: i64,
        first: i64,
        body: Vec<u8>,
    },
    Bucket {
        cycle: i32,
        bucket: i64,
    },
    Late {
        original: &'a str,
        id: &'a str,
        amount: i64,
    },
    LateCycle {
        cycle: i32,
        original: &'a str,
        id: &'a str,
        amount: i64,
    },
    EnvelopePiece {
        number: i64,
        first: i32,
        body: Vec<u8>,
    },
}

impl Drop for CqlArchive {
    fn drop(&mut self) {
        if let Some(Ok(runtime)) = self.runtime.take().map(Arc::try_unwrap) {
            runtime.shutdown_background();
        }
    }
}

impl CqlArchive {
    fn run<T>(&self, future: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        self.runtime.as_ref().expect("held until dropped").block_on(future)
    }

    fn decode(&self, bytes: &[u8]) -> Result<ArchivedTransfer, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Damaged {
            target: self.shared.target.clone(),
            detail: format!("an archived transfer does not decode: {e}"),
        })
    }

    async fn insert(&self, row: &Row<'_>) -> Result<(), StoreError> {
        let (shared, ttl, stream) = (&self.shared, self.ttl_s, &self.shared.config.stream);
        let s = &shared.statements.archive;
        retry(shared, "write to the archive", || async {
            match row {
                Row::Ids { minute, shard, rows } => {
                    // One partition: one mutation, applied whole on each replica.
                    let mut batch = Batch::new(BatchType::Unlogged);
                    for _ in rows {
                        batch.append_statement(s.insert_id.clone());
                    }
                    batch.set_consistency(Consistency::Quorum);
                    batch.set_is_idempotent(true);
                    let values: Vec<_> = rows
                        .iter()
                        .map(|&(id, position, body)| (stream, minute, shard, id, position, body, ttl))
                        .collect();
                    shared.session.batch(&batch, values).await
                }
                Row::Piece { cycle, bucket, first, body } => {
                    shared.session.execute_unpaged(&s.insert_piece, (stream, cycle, bucket, first, body, ttl)).await
                }
                &Row::Bucket { cycle, bucket } => {
                    shared.session.execute_unpaged(&s.insert_bucket, (stream, cycle, bucket, ttl)).await
                }
                &Row::Late { original, id, amount } => {
                    shared.session.execute_unpaged(&s.insert_late, (stream, original, id, amount, ttl)).await
                }
                &Row::LateCycle { cycle, original, id, amount } => {
                    shared
                        .session
                        .execute_unpaged(&s.insert_late_cycle, (stream, cycle, original, id, amount, ttl))
                        .await
                }
                Row::EnvelopePiece { number, first, body } => {
                    shared.session.execute_unpaged(&s.insert_envelope_piece, (stream, number, first, body, ttl)).await
                }
            }
        })
        .await
        .map(|_| ())
    }

    fn decode_piece(&self, bytes: &[u8]) -> Result<Vec<ArchivedTransfer>, StoreError> {
        let damaged = |detail: String| StoreError::Damaged { target: self.shared.target.clone(), detail };
        let encoded = lz4_flex::decompress_size_prepended(bytes)
            .map_err(|e| damaged(format!("an archived piece does not decompress: {e}")))?;
        postcard::from_bytes(&encoded).map_err(|e| damaged(format!("an archived piece does not decode: {e}")))
    }

    async fn late_of(&self, original: &EndToEndId) -> Result<Amount, StoreError> {
        let shared = &self.shared;
        let s = &shared.statements.archive;
        let pager = retry(shared, "read late returns", || {
            shared.session.execute_iter(s.read_late.clone(), (&shared.config.stream, original.as_str()))
        })
        .await?;
        let rows = pager.rows_stream::<(i64,)>().map_err(|e| cql_error(shared, e))?;
        let amounts: Vec<(i64,)> = rows.try_collect().await.map_err(|e| cql_error(shared, e))?;
        Ok(amounts
            .into_iter()
            .fold(Amount::ZERO, |total, (minor,)| total.checked_add(Amount::from_minor(minor)).unwrap_or(total)))
    }
}

impl Archive for CqlArchive {
    fn describe(&self) -> String {
        format!("{} archive", self.shared.target)
    }

    fn written(&self) -> Result<u64, StoreError> {
        let shared = &self.shared;
        self.run(async {
            let result = retry(shared, "read the archive's progress", || {
                shared.session.execute_unpaged(&shared.statements.archive.read_written, (&shared.config.stream,))
            })
            .await?;
            let rows = result.into_rows_result().map_err(|e| cql_error(shared, e))?;
            let written = rows.maybe_first_row::<(Option<i64>,)>().map_err(|e| cql_error(shared, e))?;
            Ok(written.and_then(|(w,)| w).map_or(0, |w| w as u64))
        })
    }

    fn write(&self, ops: &[NumberedOp]) -> Result<(), StoreError> {
        let Some(last) = ops.last() else { return Ok(()) };
        let bodies: Vec<Option<Vec<u8>>> = ops
            .iter()
            .map(|op| match &op.op {
                ArchiveOp::Transfer(a) => Some(postcard::to_allocvec(a.as_ref()).expect("encoding to a Vec")),
                ArchiveOp::LateReturn { .. } | ArchiveOp::EnvelopeItems(_) => None,
            })
            .collect();
        let mut ids: BTreeMap<(i64, i32), Vec<IdRow<'_>>> = BTreeMap::new();
        let mut cycles: BTreeMap<(i32, i64), Vec<&ArchivedTransfer>> = BTreeMap::new();
        let mut rows = Vec::new();
        for (op, body) in ops.iter().zip(&bodies) {
            match (&op.op, body) {
                (ArchiveOp::Transfer(a), Some(body)) => {
                    let (id, position) = (a.transfer.id.as_str(), a.position as i64);
                    ids.entry(id_partition(&a.transfer.id)).or_default().push((id, position, body));
                    if a.transfer.cycle != 0 {
                        cycles.entry((a.transfer.cycle as i32, position >> BUCKET_BITS)).or_default().push(a);
                    }
                }
                (ArchiveOp::LateReturn { original, original_cycle, id, amount }, _) => {
                    let (original, id, amount) = (original.as_str(), id.as_str(), amount.minor());
                    rows.push(Row::Late { original, id, amount });
                    rows.push(Row::LateCycle { cycle: *original_cycle as i32, original, id, amount });
                }
                (ArchiveOp::EnvelopeItems(piece), _) => {
                    let (number, first) = (piece.number as i64, piece.first as i32);
                    rows.push(Row::EnvelopePiece { number, first, body: crate::store::encode_items(&piece.items) });
                }
                (ArchiveOp::Transfer(_), None) => unreachable!("every transfer is encoded"),
            }
        }
        for ((minute, shard), partition) in ids {
            for chunk in partition.chunks(ID_ROWS_PER_BATCH) {
                rows.push(Row::Ids { minute, shard, rows: chunk.to_vec() });
            }
        }
        for ((cycle, bucket), transfers) in cycles {
            rows.push(Row::Bucket { cycle, bucket });
            for piece in transfers.chunks(PIECE_TRANSFERS_MAX) {
                let encoded = postcard::to_allocvec(piece).expect("encoding to a Vec");
                let body = lz4_flex::compress_prepend_size(&encoded);
                rows.push(Row::Piece { cycle, bucket, first: piece[0].position as i64, body });
            }
        }
        let shared = &self.shared;
        self.run(async {
            futures::stream::iter(rows.iter().map(|row| self.insert(row)))
                .buffer_unordered(WRITES_IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await?;
            let written = (last.number + 1) as i64;
            retry(shared, "record the archive's progress", || {
                shared
                    .session
                    .execute_unpaged(&shared.statements.archive.write_written, (&shared.config.stream, written))
            })
            .await?;
            Ok(())
        })
    }

    fn transfer(&self, id: &EndToEndId) -> Result<Option<Archived>, StoreError> {
        let shared = &self.shared;
        let body = self.run(async {
            let (minute, shard) = id_partition(id);
            let result = retry(shared, "read an archived transfer", || {
                shared.session.execute_unpaged(
                    &shared.statements.archive.read_id,
                    (&shared.config.stream, minute, shard, id.as_str()),
                )
            })
            .await?;
            let rows = result.into_rows_result().map_err(|e| cql_error(shared, e))?;
            Ok(rows.maybe_first_row::<(Vec<u8>,)>().map_err(|e| cql_error(shared, e))?.map(|(body,)| body))
        })?;
        let Some(body) = body else { return Ok(None) };
        let late = self.run(self.late_of(id))?;
        Ok(Some(Archived { transfer: self.decode(&body)?, late }))
    }

    fn cycle_from(
        &self,
        cycle: u32,
        from: u64,
        below: u64,
        visit: &mut dyn FnMut(Archived) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        if from >= below {
            return Ok(());
        }
        let shared = &self.shared;
        let (stream, cycle) = (&shared.config.stream, cycle as i32);
        let s = &shared.statements.archive;
        let buckets: Vec<(i64,)> = self.run(async {
            let pager = retry(shared, "list a cycle's buckets", || {
                shared.session.execute_iter(s.read_buckets.clone(), (stream, cycle))
            })
            .await?;
            let rows = pager.rows_stream::<(i64,)>().map_err(|e| cql_error(shared, e))?;
            rows.try_collect().await.map_err(|e| cql_error(shared, e))
        })?;
        // Late returns of the cycle's payments, read once.
        let late_rows: Vec<(String, i64)> = self.run(async {
            let pager = retry(shared, "read a cycle's late returns", || {
                shared.session.execute_iter(s.read_late_cycle.clone(), (stream, cycle))
            })
            .await?;
            let rows = pager.rows_stream::<(String, i64)>().map_err(|e| cql_error(shared, e))?;
            rows.try_collect().await.map_err(|e| cql_error(shared, e))
        })?;
        let mut late = std::collections::HashMap::<String, Amount>::new();
        for (original, minor) in late_rows {
            let total = late.entry(original).or_insert(Amount::ZERO);
            *total = total.checked_add(Amount::from_minor(minor)).unwrap_or(*total);
        }
        // Buckets wholly before `from` are not read.
        let first_bucket = i64::try_from(from >> BUCKET_BITS).unwrap_or(i64::MAX);
        let mut buckets: Vec<i64> = buckets.into_iter().map(|(b,)| b).filter(|&b| b >= first_bucket).collect();
        buckets.sort_unstable();
        // Pieces come in order of their first position, each in position
        // order; one written again (after a crash or a takeover) repeats
        // transfers already given, which are skipped.
        let mut given: Option<u64> = None;
        for bucket in buckets {
            let pieces: Vec<(Vec<u8>,)> = self.run(async {
                let pager = retry(shared, "read a cycle's archived transfers", || {
                    shared.session.execute_iter(s.read_pieces.clone(), (stream, cycle, bucket, below as i64))
                })
                .await?;
                let rows = pager.rows_stream::<(Vec<u8>,)>().map_err(|e| cql_error(shared, e))?;
                rows.try_collect().await.map_err(|e| cql_error(shared, e))
            })?;
            for (piece,) in pieces {
                for transfer in self.decode_piece(&piece)? {
                    if transfer.position >= below
                        || transfer.position < from
                        || given.is_some_and(|g| transfer.position <= g)
                    {
                        continue;
                    }
                    given = Some(transfer.position);
                    let late = late.get(transfer.transfer.id.as_str()).copied().unwrap_or(Amount::ZERO);
                    if !visit(Archived { transfer, late })? {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn envelope_items(&self, number: u64, from: u32, to: u32) -> Result<Vec<ItemView>, StoreError> {
        let shared = &self.shared;
        let s = &shared.statements.archive;
        let first = (from - from % ENVELOPE_PIECE_ITEMS) as i32;
        let pieces: Vec<(Vec<u8>,)> = self.run(async {
            let pager = retry(shared, "read an envelope's archived items", || {
                let values = (&shared.config.stream, number as i64, first, to as i32);
                shared.session.execute_iter(s.read_envelope_pieces.clone(), values)
            })
            .await?;
            let rows = pager.rows_stream::<(Vec<u8>,)>().map_err(|e| cql_error(shared, e))?;
            rows.try_collect().await.map_err(|e| cql_error(shared, e))
        })?;
        let mut items = Vec::new();
        for (piece,) in pieces {
            let decoded = crate::store::decode_items(&piece)
                .map_err(|detail| StoreError::Damaged { target: shared.target.clone(), detail })?;
            items.extend(decoded.into_iter().filter(|item| (from..to).contains(&item.index)));
        }
        Ok(items)
    }

    fn expire(&self, _before: TimestampMs) -> Result<u64, StoreError> {
        Ok(0) // rows carry the retention as their TTL
    }
}
