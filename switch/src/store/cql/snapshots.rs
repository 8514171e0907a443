//! Engine snapshots on Cassandra / ScyllaDB, and trimming the journal
//! behind them.
//!
//! ```text
//! snapshots       ((stream), records DESC) -> parts, bytes     the index: a snapshot exists once its row does
//! snapshot_parts  ((stream, records, part)) -> data blob       1 MiB each, a partition each
//! journal_first   (stream) -> first                            the first journal record still held
//! ```
//! A snapshot is saved part by part (QUORUM), then its index row is written:
//! a crash in between leaves parts nobody lists. Removal deletes the index
//! row first. Trimming moves `first` forward to a chunk boundary, then
//! deletes the journal partitions wholly before it.

use super::{CHUNK_RECORDS, Shared, cql_error, read_records, retry};
use crate::store::{ReplayError, Snapshots, StoreError, Visit};
use futures::TryStreamExt;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use std::sync::Arc;

/// Bytes per snapshot part (well under Cassandra's mutation limit).
const PART_BYTES: usize = 1 << 20;

pub(super) struct Statements {
    list: PreparedStatement,
    index: PreparedStatement,
    insert_index: PreparedStatement,
    delete_index: PreparedStatement,
    insert_part: PreparedStatement,
    read_part: PreparedStatement,
    delete_part: PreparedStatement,
    pub(super) read_first: PreparedStatement,
    write_first: PreparedStatement,
    delete_chunk: PreparedStatement,
}

pub(super) async fn prepare_statements(
    prepare: impl AsyncFn(&str, Consistency, bool) -> Result<PreparedStatement, StoreError>,
) -> Result<Statements, StoreError> {
    use Consistency::Quorum;
    Ok(Statements {
        list: prepare("SELECT records FROM {ks}.snapshots WHERE stream = ?", Quorum, true).await?,
        index: prepare("SELECT parts, bytes FROM {ks}.snapshots WHERE stream = ? AND records = ?", Quorum, true)
            .await?,
        insert_index: prepare(
            "INSERT INTO {ks}.snapshots (stream, records, parts, bytes) VALUES (?, ?, ?, ?)",
            Quorum,
            true,
        )
        .await?,
        delete_index: prepare("DELETE FROM {ks}.snapshots WHERE stream = ? AND records = ?", Quorum, true).await?,
        insert_part: prepare(
            "INSERT INTO {ks}.snapshot_parts (stream, records, part, data) VALUES (?, ?, ?, ?)",
            Quorum,
            true,
        )
        .await?,
        read_part: prepare(
            "SELECT data FROM {ks}.snapshot_parts WHERE stream = ? AND records = ? AND part = ?",
            Quorum,
            true,
        )
        .await?,
        delete_part: prepare(
            "DELETE FROM {ks}.snapshot_parts WHERE stream = ? AND records = ? AND part = ?",
            Quorum,
            true,
        )
        .await?,
        read_first: prepare("SELECT first FROM {ks}.journal_first WHERE stream = ?", Quorum, true).await?,
        write_first: prepare("INSERT INTO {ks}.journal_first (stream, first) VALUES (?, ?)", Quorum, true).await?,
        delete_chunk: prepare("DELETE FROM {ks}.journal WHERE stream = ? AND chunk = ?", Quorum, true).await?,
    })
}

/// The first journal record still held (0 when nothing was trimmed).
pub(super) async fn read_first(shared: &Shared) -> Result<i64, StoreError> {
    let stream = &shared.config.stream;
    let result = retry(shared, "read the first record", || {
        shared.session.execute_unpaged(&shared.statements.snapshots.read_first, (stream,))
    })
    .await?;
    let rows = result.into_rows_result().map_err(|e| cql_error(shared, e))?;
    let first = rows.maybe_first_row::<(Option<i64>,)>().map_err(|e| cql_error(shared, e))?;
    Ok(first.and_then(|(first,)| first).unwrap_or(0))
}

/// A snapshot's index row: its parts and bytes, or `None` when it is not listed.
async fn read_index(shared: &Shared, records: i64) -> Result<Option<(i32, i64)>, StoreError> {
    let stream = &shared.config.stream;
    let index = retry(shared, "read a snapshot's index", || {
        shared.session.execute_unpaged(&shared.statements.snapshots.index, (stream, records))
    })
    .await?;
    let rows = index.into_rows_result().map_err(|e| cql_error(shared, e))?;
    rows.maybe_first_row::<(i32, i64)>().map_err(|e| cql_error(shared, e))
}

/// Snapshots of one stream, used from the snapshot thread.
pub(super) struct CqlSnapshots {
    pub(super) shared: Arc<Shared>,
    /// The store's runtime: the driver's connections and the tasks it
    /// spawns live there, whichever thread waits for them.
    pub(super) runtime: Arc<tokio::runtime::Runtime>,
}

impl CqlSnapshots {
    fn run<T>(&self, future: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        self.runtime.block_on(future)
    }
}

impl Snapshots for CqlSnapshots {
    fn describe(&self) -> String {
        format!("{} snapshots", self.shared.target)
    }

    fn read(&mut self, from: u64, to: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
        let shared = self.shared.clone();
        self.runtime.block_on(read_records(&shared, from, to, visit))
    }

    fn list(&mut self) -> Result<Vec<u64>, StoreError> {
        let shared = &self.shared;
        self.run(async {
            let s = &shared.statements.snapshots;
            let pager = retry(shared, "list snapshots", || {
                shared.session.execute_iter(s.list.clone(), (&shared.config.stream,))
            })
            .await?;
            let rows = pager.rows_stream::<(i64,)>().map_err(|e| cql_error(shared, e))?;
            let records: Vec<(i64,)> = rows.try_collect().await.map_err(|e| cql_error(shared, e))?;
            Ok(records.into_iter().map(|(r,)| r as u64).collect())
        })
    }

    fn load(&mut self, journal_records: u64) -> Result<Vec<u8>, StoreError> {
        let shared = &self.shared;
        let (stream, records) = (&shared.config.stream, journal_records as i64);
        self.run(async {
            let s = &shared.statements.snapshots;
            let Some((parts, bytes)) = read_index(shared, records).await? else {
                return Err(StoreError::Damaged {
                    target: shared.target.clone(),
                    detail: format!("snapshot {records} is not listed"),
                });
            };
            let mut snapshot = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
            for part in 0..parts {
                let result = retry(shared, "read a snapshot part", || {
                    shared.session.execute_unpaged(&s.read_part, (stream, records, part))
                })
                .await?;
                let rows = result.into_rows_result().map_err(|e| cql_error(shared, e))?;
                let Some((data,)) = rows.maybe_first_row::<(Vec<u8>,)>().map_err(|e| cql_error(shared, e))? else {
                    return Err(StoreError::Damaged {
                        target: shared.target.clone(),
                        detail: format!("snapshot {records} lacks part {part}"),
                    });
                };
                snapshot.extend_from_slice(&data);
            }
            Ok(snapshot)
        })
    }

    fn save(&mut self, journal_records: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        let shared = &self.shared;
        let (stream, records) = (&shared.config.stream, journal_records as i64);
        self.run(async {
            let s = &shared.statements.snapshots;
            let parts: Vec<&[u8]> = snapshot.chunks(PART_BYTES).collect();
            for (part, data) in parts.iter().enumerate() {
                let part = part as i32;
                retry(shared, "write a snapshot part", || {
                    shared.session.execute_unpaged(&s.insert_part, (stream, records, part, *data))
                })
                .await?;
            }
            let (count, bytes) = (parts.len() as i32, snapshot.len() as i64);
            retry(shared, "write a snapshot's index", || {
                shared.session.execute_unpaged(&s.insert_index, (stream, records, count, bytes))
            })
            .await?;
            Ok(())
        })
    }

    fn remove(&mut self, journal_records: u64) -> Result<(), StoreError> {
        let shared = &self.shared;
        let (stream, records) = (&shared.config.stream, journal_records as i64);
        self.run(async {
            let s = &shared.statements.snapshots;
            let parts = read_index(shared, records).await?.map_or(0, |(parts, _)| parts);
            retry(shared, "delete a snapshot's index", || {
                shared.session.execute_unpaged(&s.delete_index, (stream, records))
            })
            .await?;
            for part in 0..parts {
                retry(shared, "delete a snapshot part", || {
                    shared.session.execute_unpaged(&s.delete_part, (stream, records, part))
                })
                .await?;
            }
            Ok(())
        })
    }

    fn trim(&mut self, before: u64) -> Result<(), StoreError> {
        let shared = &self.shared;
        let stream = &shared.config.stream;
        self.run(async {
            let s = &shared.statements.snapshots;
            let first = read_first(shared).await?;
            // Only whole partitions: records from the last boundary stay.
            let new_first = (before as i64 / CHUNK_RECORDS) * CHUNK_RECORDS;
            if new_first <= first {
                return Ok(());
            }
            retry(shared, "move the first record", || {
                shared.session.execute_unpaged(&s.write_first, (stream, new_first))
            })
            .await?;
            for chunk in first / CHUNK_RECORDS..new_first / CHUNK_RECORDS {
                retry(shared, "delete a journal partition", || {
                    shared.session.execute_unpaged(&s.delete_chunk, (stream, chunk))
                })
                .await?;
            }
            Ok(())
        })
    }
}
