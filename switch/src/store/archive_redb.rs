//! The embedded archive: transfers that left the engine's memory, in a
//! redb file of their own beside the journal (`archive.redb`), so its
//! writes never hold the journal's write lock or share its fsyncs.
//!
//! Tables:
//! - `transfers`: position → the archived transfer (postcard);
//! - `by_id`: the id's minute and a 32-bit hash of the end-to-end id →
//!   positions (`GetStatus`, returns; the transfer's own id settles a
//!   collision);
//! - `by_cycle`: (cycle, position) → () (a past cycle's transfers in order);
//! - `late`: (original, return id) → amount returned after archiving;
//! - `meta`: `written` (archive ops written; the next op's number).
//!
//! One write transaction per batch of ops, committed durably (the
//! snapshot thread saves a snapshot only once the archive holds every op
//! its engine made, so the archive must not lose a commit). Writing an op
//! twice changes nothing (replay after a crash rewrites the ops the
//! archive had not yet recorded as written).

use super::{Archive, Archived, StoreError};
use ponte_domain::{Amount, EndToEndId, TimestampMs};
use ponte_ledger::{ArchiveOp, ArchivedTransfer, NumberedOp};
use redb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};

const TRANSFERS: TableDefinition<u64, &[u8]> = TableDefinition::new("transfers");
const BY_ID: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("by_id");
const BY_CYCLE: TableDefinition<(u32, u64), ()> = TableDefinition::new("by_cycle");
const LATE: TableDefinition<(&str, &str), i64> = TableDefinition::new("late");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Archived transfers deleted per transaction when retention expires them.
const EXPIRE_BATCH: usize = 10_000;

pub struct EmbeddedArchive {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedArchive").field("path", &self.path).finish()
    }
}

impl EmbeddedArchive {
    /// Opens (creating if needed) the archive file at `path`.
    pub fn open(path: &Path) -> Result<EmbeddedArchive, StoreError> {
        let db = Database::create(path).map_err(|e| error(path, e))?;
        let archive = EmbeddedArchive { db, path: path.to_path_buf() };
        archive.write_txn(|txn| {
            txn.open_table(TRANSFERS)?;
            txn.open_multimap_table(BY_ID)?;
            txn.open_table(BY_CYCLE)?;
            txn.open_table(LATE)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(archive)
    }

    fn write_txn<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>) -> Result<T, StoreError> {
        let run = || -> Result<T, redb::Error> {
            let txn = self.db.begin_write()?;
            let value = f(&txn)?;
            txn.commit()?;
            Ok(value)
        };
        run().map_err(|e| error(&self.path, e))
    }

    fn read_txn<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>) -> Result<T, StoreError> {
        let run = || -> Result<T, redb::Error> { f(&self.db.begin_read()?) };
        run().map_err(|e| error(&self.path, e))
    }

    fn damaged(&self, detail: String) -> StoreError {
        StoreError::Damaged { target: self.path.display().to_string(), detail }
    }

    fn decode(&self, bytes: &[u8]) -> Result<ArchivedTransfer, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| self.damaged(format!("an archived transfer does not decode: {e}")))
    }

    /// The late returns of `original`, summed.
    fn late_of(
        &self,
        late: &impl ReadableTable<(&'static str, &'static str), i64>,
        original: &EndToEndId,
    ) -> Result<Amount, redb::Error> {
        let id = original.as_str();
        let mut total = Amount::ZERO;
        for row in late.range((id, "")..=(id, "~"))? {
            let (_, amount) = row?;
            total = total.checked_add(Amount::from_minor(amount.value())).unwrap_or(total);
        }
        Ok(total)
    }
}

fn error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Archive { path: path.to_path_buf(), detail: e.into().to_string() }
}

impl Archive for EmbeddedArchive {
    fn describe(&self) -> String {
        format!("embedded archive {}", self.path.display())
    }

    fn written(&self) -> Result<u64, StoreError> {
        self.read_txn(|txn| Ok(txn.open_table(META)?.get("written")?.map_or(0, |v| v.value())))
    }

    fn write(&self, ops: &[NumberedOp]) -> Result<(), StoreError> {
        let Some(last) = ops.last() else { return Ok(()) };
        let encoded: Vec<(u64, Vec<u8>)> = ops
            .iter()
            .filter_map(|op| match &op.op {
                ArchiveOp::Transfer(archived) => {
                    Some((archived.position, postcard::to_allocvec(archived.as_ref()).expect("encoding to a Vec")))
                }
                ArchiveOp::LateReturn { .. } => None,
            })
            .collect();
        self.write_txn(|txn| {
            let mut transfers = txn.open_table(TRANSFERS)?;
            let mut by_id = txn.open_multimap_table(BY_ID)?;
            let mut by_cycle = txn.open_table(BY_CYCLE)?;
            let mut late = txn.open_table(LATE)?;
            let mut encoded = encoded.iter();
            // Index entries inserted in key order: neighbouring inserts
            // touch the same B-tree pages.
            let mut ids = Vec::with_capacity(ops.len());
            for op in ops {
                match &op.op {
                    ArchiveOp::Transfer(archived) => {
                        let (position, bytes) = encoded.next().expect("one encoding per transfer");
                        transfers.insert(position, bytes.as_slice())?;
                        ids.push((id_hash(&archived.transfer.id), *position));
                        if archived.transfer.cycle != 0 {
                            by_cycle.insert((archived.transfer.cycle, *position), ())?;
                        }
                    }
                    ArchiveOp::LateReturn { original, id, amount, .. } => {
                        late.insert((original.as_str(), id.as_str()), amount.minor())?;
                    }
                }
            }
            ids.sort_unstable();
            for (key, position) in ids {
                by_id.insert(key, position)?;
            }
            txn.open_table(META)?.insert("written", last.number + 1)?;
            Ok(())
        })
    }

    fn transfer(&self, id: &EndToEndId) -> Result<Option<Archived>, StoreError> {
        let candidates = self.read_txn(|txn| {
            let transfers = txn.open_table(TRANSFERS)?;
            let mut found = Vec::new();
            for position in txn.open_multimap_table(BY_ID)?.get(id_hash(id))? {
                if let Some(bytes) = transfers.get(position?.value())? {
                    found.push(bytes.value().to_vec());
                }
            }
            let late = self.late_of(&txn.open_table(LATE)?, id)?;
            Ok((found, late))
        })?;
        let (found, late) = candidates;
        for bytes in found {
            let transfer = self.decode(&bytes)?;
            if transfer.transfer.id == *id {
                return Ok(Some(Archived { transfer, late }));
            }
        }
        Ok(None)
    }

    fn cycle(
        &self,
        cycle: u32,
        below: u64,
        visit: &mut dyn FnMut(Archived) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(|e| error(&self.path, e))?;
        let read = || -> Result<_, redb::Error> {
            Ok((txn.open_table(BY_CYCLE)?, txn.open_table(TRANSFERS)?, txn.open_table(LATE)?))
        };
        let (by_cycle, transfers, late) = read().map_err(|e| error(&self.path, e))?;
        let rows = by_cycle.range((cycle, 0)..(cycle, below)).map_err(|e| error(&self.path, e))?;
        for row in rows {
            let (key, _) = row.map_err(|e| error(&self.path, e))?;
            let (_, position) = key.value();
            let bytes = transfers.get(position).map_err(|e| error(&self.path, e))?;
            let Some(bytes) = bytes else {
                return Err(self.damaged(format!("cycle {cycle} lists position {position}, which is missing")));
            };
            let transfer = self.decode(bytes.value())?;
            let late = self.late_of(&late, &transfer.transfer.id).map_err(|e| error(&self.path, e))?;
            visit(Archived { transfer, late })?;
        }
        Ok(())
    }

    fn expire(&self, before: TimestampMs) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let batch = self.write_txn(|txn| {
                let mut transfers = txn.open_table(TRANSFERS)?;
                let mut by_id = txn.open_multimap_table(BY_ID)?;
                let mut by_cycle = txn.open_table(BY_CYCLE)?;
                let mut late = txn.open_table(LATE)?;
                let mut count = 0_usize;
                while count < EXPIRE_BATCH {
                    let Some((position, bytes)) = transfers.first()?.map(|(p, b)| (p.value(), b.value().to_vec()))
                    else {
                        break;
                    };
                    let Ok(archived) = postcard::from_bytes::<ArchivedTransfer>(&bytes) else { break };
                    let t = &archived.transfer;
                    if t.settled_at.unwrap_or(t.created_at) >= before {
                        break;
                    }
                    transfers.remove(position)?;
                    by_id.remove(id_hash(&t.id), position)?;
                    by_cycle.remove((t.cycle, position))?;
                    let id = t.id.as_str();
                    late.retain_in((id, "")..=(id, "~"), |_, _| false)?;
                    count += 1;
                }
                Ok(count)
            })?;
            removed += batch as u64;
            if batch < EXPIRE_BATCH {
                return Ok(removed);
            }
        }
    }
}

/// The key of an id in `by_id`: the minute its id was made (high 32 bits)
/// and 32 bits of an xxh3 of the id (fixed seed: it is stored). Ids are
/// archived roughly in the order of their minute, so inserts land in a
/// small, cached region of the B-tree instead of at random across it.
fn id_hash(id: &EndToEndId) -> u64 {
    let minute = id.created_at_ms().map_or(0, |ms| (ms / 60_000) as u64 & 0xffff_ffff);
    minute << 32 | (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) & 0xffff_ffff)
}

/// The archive file beside a journal file.
pub fn beside(journal: &Path) -> PathBuf {
    journal.with_file_name("archive.redb")
}
