//! The embedded archive: transfers that left the engine's memory, in a
//! redb file of their own beside the journal (`archive.redb`), so its
//! writes never hold the journal's write lock or share its fsyncs.
//!
//! Laid out so that a write appends and never rewrites what is there (an
//! index keyed by id alone would put each batch's entries at random across
//! a B-tree that grows with the archive, and every commit would rewrite
//! most of its leaves: the write rate fell from 190k to 60k transfers a
//! second over the first 5 M):
//! - `blocks`: the first position of a block → up to [`BLOCK`] archived
//!   transfers of one write, in position order, postcard then LZ4;
//! - `by_id`: (the id's minute, the write's run, 32 bits of a hash of the
//!   id, the position's low 32 bits) as one `u128` → the position. A
//!   write's entries share a run, so they land together after the entries
//!   already there instead of among them;
//! - `runs`: (minute, run) → () for every write that archived an id of
//!   that minute (a lookup by id searches each run of the id's minute);
//! - `cycles`: (cycle, block) → () for every block holding a transfer of
//!   that cycle (a past cycle's transfers in order);
//! - `late`: (original, return id) → amount returned after archiving;
//! - `envelope_items`: (envelope number, first item) → a piece of up to
//!   [`ENVELOPE_PIECE_ITEMS`] items of a complete envelope, postcard then
//!   LZ4; `envelope_done`: (completed at, number) → () for retention;
//! - `meta`: `written` (archive ops written; the next op's number) and
//!   `format`.
//!
//! One write transaction per batch of ops, committed durably (the
//! snapshot thread saves a snapshot only once the archive holds every op
//! its engine made, so the archive must not lose a commit). Ops below
//! `written` are skipped, so replay after a crash can hand the same ops
//! again harmlessly.

use super::{Archive, Archived, StoreError};
use ponte_domain::{Amount, EndToEndId, TimestampMs};
use ponte_ledger::{ArchiveOp, ArchivedTransfer, ENVELOPE_PIECE_ITEMS, ItemView, NumberedOp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use std::path::{Path, PathBuf};

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BY_ID: TableDefinition<u128, u64> = TableDefinition::new("by_id");
const RUNS: TableDefinition<(u32, u32), ()> = TableDefinition::new("runs");
const CYCLES: TableDefinition<(u32, u64), ()> = TableDefinition::new("cycles");
const LATE: TableDefinition<(&str, &str), i64> = TableDefinition::new("late");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ENVELOPE_ITEMS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("envelope_items");
const ENVELOPE_DONE: TableDefinition<(i64, u64), ()> = TableDefinition::new("envelope_done");

/// The layout above; a file without it (or with another) is refused.
const FORMAT: u64 = 2;

/// Archived transfers per block: large enough to compress well, small
/// enough that a lookup decodes little.
const BLOCK: usize = 256;

/// redb's page cache for the archive (its default is 1 GiB, all of it
/// resident once written through): writes append, reads are rare and
/// touch a few pages, so a small cache costs nothing measurable.
const CACHE_BYTES: usize = 32 << 20;

/// Archived transfers deleted per transaction when retention expires them.
const EXPIRE_BATCH: usize = 16_384;

/// What a block holds: the run of the write that made it (its transfers'
/// `by_id` keys) and its transfers.
#[derive(serde::Serialize, serde::Deserialize)]
struct Block {
    run: u32,
    transfers: Vec<ArchivedTransfer>,
}

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
        let started = std::time::Instant::now();
        let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(path).map_err(|e| error(path, e))?;
        tracing::debug!(archive = %path.display(), ms = started.elapsed().as_millis() as u64, "archive file opened");
        let archive = EmbeddedArchive { db, path: path.to_path_buf() };
        let format = archive.write_txn(|txn| {
            // The first layout (one row per transfer) recorded no format.
            if txn.list_tables()?.any(|t| t.name() == "transfers") {
                return Ok(1);
            }
            let mut meta = txn.open_table(META)?;
            let format = meta.get("format")?.map(|v| v.value());
            if format.is_none() {
                meta.insert("format", FORMAT)?;
            }
            drop(meta);
            txn.open_table(BLOCKS)?;
            txn.open_table(BY_ID)?;
            txn.open_table(RUNS)?;
            txn.open_table(CYCLES)?;
            txn.open_table(LATE)?;
            txn.open_table(ENVELOPE_ITEMS)?;
            txn.open_table(ENVELOPE_DONE)?;
            Ok(format.unwrap_or(FORMAT))
        })?;
        if format != FORMAT {
            return Err(
                archive.damaged(format!("written in archive format {format}; this build reads format {FORMAT} only"))
            );
        }
        Ok(archive)
    }

    fn write_txn<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>) -> Result<T, StoreError> {
        let run = || -> Result<T, redb::Error> {
            let mut txn = self.db.begin_write()?;
            // Each commit saves the allocator state: after a crash the file
            // opens at once instead of being walked whole (seconds per GB,
            // growing with the archive).
            txn.set_quick_repair(true);
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

    fn decode(&self, bytes: &[u8]) -> Result<Block, StoreError> {
        let raw = lz4_flex::decompress_size_prepended(bytes)
            .map_err(|e| self.damaged(format!("an archive block does not decompress: {e}")))?;
        postcard::from_bytes(&raw).map_err(|e| self.damaged(format!("an archive block does not decode: {e}")))
    }

    /// The block holding `position`, if any.
    fn block_of(
        &self,
        blocks: &impl ReadableTable<u64, &'static [u8]>,
        position: u64,
    ) -> Result<Option<Block>, StoreError> {
        let row = blocks.range(..=position).map_err(|e| error(&self.path, e))?.next_back();
        match row {
            None => Ok(None),
            Some(row) => {
                let (_, bytes) = row.map_err(|e| error(&self.path, e))?;
                self.decode(bytes.value()).map(Some)
            }
        }
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
        let written = self.written()?;
        let ops: Vec<&NumberedOp> = ops.iter().filter(|op| op.number >= written).collect();
        let (Some(first), Some(last)) = (ops.first(), ops.last()) else { return Ok(()) };
        // The run: the first op's number (a minute's runs never wrap).
        let run = first.number as u32;
        let transfers: Vec<&ArchivedTransfer> = ops
            .iter()
            .filter_map(|op| match &op.op {
                ArchiveOp::Transfer(archived) => Some(archived.as_ref()),
                ArchiveOp::LateReturn { .. } | ArchiveOp::EnvelopeItems(_) => None,
            })
            .collect();
        let pieces: Vec<_> = ops
            .iter()
            .filter_map(|op| match &op.op {
                ArchiveOp::EnvelopeItems(piece) => {
                    Some((piece.completed_at, piece.number, piece.first, super::encode_items(&piece.items)))
                }
                _ => None,
            })
            .collect();
        // Encoded before the transaction: only the inserts hold the lock.
        let mut blocks = Vec::with_capacity(transfers.len().div_ceil(BLOCK));
        let mut cycles = Vec::new();
        for chunk in transfers.chunks(BLOCK) {
            let start = chunk[0].position;
            let block = Block { run, transfers: chunk.iter().map(|t| (*t).clone()).collect() };
            let raw = postcard::to_allocvec(&block).expect("encoding to a Vec");
            blocks.push((start, lz4_flex::compress_prepend_size(&raw)));
            let mut seen: Vec<u32> = chunk.iter().map(|t| t.transfer.cycle).filter(|&c| c != 0).collect();
            seen.sort_unstable();
            seen.dedup();
            cycles.extend(seen.into_iter().map(|c| (c, start)));
        }
        let mut ids: Vec<(u128, u64)> =
            transfers.iter().map(|t| (id_key(&t.transfer.id, run, t.position), t.position)).collect();
        ids.sort_unstable();
        let mut runs: Vec<u32> = ids.iter().map(|&(k, _)| minute_of_key(k)).collect();
        runs.dedup();
        self.write_txn(|txn| {
            let mut table = txn.open_table(BLOCKS)?;
            for (start, bytes) in &blocks {
                table.insert(start, bytes.as_slice())?;
            }
            let mut table = txn.open_table(BY_ID)?;
            for (key, position) in ids {
                table.insert(key, position)?;
            }
            let mut table = txn.open_table(RUNS)?;
            for minute in runs {
                table.insert((minute, run), ())?;
            }
            let mut table = txn.open_table(CYCLES)?;
            for key in cycles {
                table.insert(key, ())?;
            }
            let mut late = txn.open_table(LATE)?;
            for op in &ops {
                if let ArchiveOp::LateReturn { original, id, amount, .. } = &op.op {
                    late.insert((original.as_str(), id.as_str()), amount.minor())?;
                }
            }
            let mut items = txn.open_table(ENVELOPE_ITEMS)?;
            let mut done = txn.open_table(ENVELOPE_DONE)?;
            for (completed_at, number, first, body) in &pieces {
                items.insert((*number, *first), body.as_slice())?;
                done.insert((*completed_at, *number), ())?;
            }
            txn.open_table(META)?.insert("written", last.number + 1)?;
            Ok(())
        })
    }

    fn envelope_items(&self, number: u64, from: u32, to: u32) -> Result<Vec<ItemView>, StoreError> {
        let first = from - from % ENVELOPE_PIECE_ITEMS;
        let pieces = self.read_txn(|txn| {
            let table = txn.open_table(ENVELOPE_ITEMS)?;
            let rows = table.range((number, first)..(number, to))?;
            rows.map(|row| Ok(row?.1.value().to_vec())).collect::<Result<Vec<_>, redb::Error>>()
        })?;
        let mut items = Vec::new();
        for piece in pieces {
            let decoded = super::decode_items(&piece).map_err(|detail| self.damaged(detail))?;
            items.extend(decoded.into_iter().filter(|item| (from..to).contains(&item.index)));
        }
        Ok(items)
    }

    fn transfer(&self, id: &EndToEndId) -> Result<Option<Archived>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| error(&self.path, e))?;
        let read = || -> Result<_, redb::Error> {
            let minute = crate::store::id_minute(id);
            let hash = hash_of(id);
            let by_id = txn.open_table(BY_ID)?;
            let mut positions = Vec::new();
            for row in txn.open_table(RUNS)?.range((minute, 0)..=(minute, u32::MAX))? {
                let (key, _) = row?;
                let (_, run) = key.value();
                let first = by_id_key(minute, run, hash, 0);
                for row in by_id.range(first..=by_id_key(minute, run, hash, u32::MAX))? {
                    positions.push(row?.1.value());
                }
            }
            let late = self.late_of(&txn.open_table(LATE)?, id)?;
            Ok((positions, late, txn.open_table(BLOCKS)?))
        };
        let (positions, late, blocks) = read().map_err(|e| error(&self.path, e))?;
        for position in positions {
            // Past retention, the block may be gone before its index entries.
            let Some(block) = self.block_of(&blocks, position)? else { continue };
            if let Some(transfer) = block.transfers.into_iter().find(|t| t.position == position && t.transfer.id == *id)
            {
                return Ok(Some(Archived { transfer, late }));
            }
        }
        Ok(None)
    }

    fn cycle_from(
        &self,
        cycle: u32,
        from: u64,
        below: u64,
        visit: &mut dyn FnMut(Archived) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(|e| error(&self.path, e))?;
        let read = || -> Result<_, redb::Error> {
            Ok((txn.open_table(CYCLES)?, txn.open_table(BLOCKS)?, txn.open_table(LATE)?))
        };
        let (cycles, blocks, late) = read().map_err(|e| error(&self.path, e))?;
        let any_late = !late.is_empty().map_err(|e| error(&self.path, e))?;
        if from >= below {
            return Ok(());
        }
        // The block holding `from` starts at or before it: the last block of
        // the cycle starting there or earlier (none: the cycle's first).
        let before = cycles.range((cycle, 0)..=(cycle, from)).map_err(|e| error(&self.path, e))?.next_back();
        let start = match before {
            Some(row) => row.map_err(|e| error(&self.path, e))?.0.value().1,
            None => 0,
        };
        let rows = cycles.range((cycle, start)..(cycle, below)).map_err(|e| error(&self.path, e))?;
        for row in rows {
            let (key, _) = row.map_err(|e| error(&self.path, e))?;
            let (_, start) = key.value();
            let bytes = blocks.get(start).map_err(|e| error(&self.path, e))?;
            let Some(bytes) = bytes else {
                return Err(self.damaged(format!("cycle {cycle} lists block {start}, which is missing")));
            };
            for transfer in self.decode(bytes.value())?.transfers {
                if transfer.transfer.cycle != cycle || transfer.position >= below || transfer.position < from {
                    continue;
                }
                let late = match any_late {
                    true => self.late_of(&late, &transfer.transfer.id).map_err(|e| error(&self.path, e))?,
                    false => Amount::ZERO,
                };
                if !visit(Archived { transfer, late })? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn expire(&self, before: TimestampMs) -> Result<u64, StoreError> {
        // Envelopes complete before `before`: their pieces, a few at a time.
        loop {
            let more = self.write_txn(|txn| {
                let mut done = txn.open_table(ENVELOPE_DONE)?;
                let mut items = txn.open_table(ENVELOPE_ITEMS)?;
                let due: Vec<(i64, u64)> = done
                    .range(..(before, 0))?
                    .take(64)
                    .map(|row| Ok(row?.0.value()))
                    .collect::<Result<_, redb::Error>>()?;
                for &(completed_at, number) in &due {
                    items.retain_in((number, 0)..=(number, u32::MAX), |_, _| false)?;
                    done.remove((completed_at, number))?;
                }
                Ok(due.len() == 64)
            })?;
            if !more {
                break;
            }
        }
        let mut removed = 0;
        loop {
            // Whole blocks, oldest first, while every transfer in one is past
            // retention (a block keeps its younger neighbours' elders a little
            // longer, never the reverse).
            let batch = self.write_txn(|txn| {
                let mut blocks = txn.open_table(BLOCKS)?;
                let mut by_id = txn.open_table(BY_ID)?;
                let mut runs = txn.open_table(RUNS)?;
                let mut cycles = txn.open_table(CYCLES)?;
                let mut late = txn.open_table(LATE)?;
                let any_late = !late.is_empty()?;
                let mut count = 0_usize;
                while count < EXPIRE_BATCH {
                    let Some((start, bytes)) = blocks.first()?.map(|(p, b)| (p.value(), b.value().to_vec())) else {
                        break;
                    };
                    let Ok(block) = self.decode(&bytes) else {
                        tracing::error!(archive = %self.path.display(), start, "an archive block does not decode; retention stops at it");
                        break;
                    };
                    let time = |t: &ArchivedTransfer| t.transfer.settled_at.unwrap_or(t.transfer.created_at);
                    if block.transfers.iter().any(|t| time(t) >= before) {
                        break;
                    }
                    blocks.remove(start)?;
                    let mut keys: Vec<u128> =
                        block.transfers.iter().map(|t| id_key(&t.transfer.id, block.run, t.position)).collect();
                    keys.sort_unstable();
                    for key in &keys {
                        by_id.remove(key)?;
                    }
                    let mut minutes: Vec<u32> = keys.iter().map(|&k| minute_of_key(k)).collect();
                    minutes.dedup();
                    for minute in minutes {
                        let (first, last) = (by_id_key(minute, block.run, 0, 0), by_id_key(minute, block.run, u32::MAX, u32::MAX));
                        if by_id.range(first..=last)?.next().is_none() {
                            runs.remove((minute, block.run))?;
                        }
                    }
                    for t in &block.transfers {
                        cycles.remove((t.transfer.cycle, start))?;
                        if any_late {
                            let id = t.transfer.id.as_str();
                            late.retain_in((id, "")..=(id, "~"), |_, _| false)?;
                        }
                    }
                    count += block.transfers.len();
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

/// 32 bits of the id's archive hash.
fn hash_of(id: &EndToEndId) -> u32 {
    crate::store::id_hash(id) as u32
}

/// A `by_id` key: (minute, run, hash, the position's low 32 bits), high
/// to low; with `hash` and `low` 0, the first key of a run's entries.
fn by_id_key(minute: u32, run: u32, hash: u32, low: u32) -> u128 {
    u128::from(minute) << 96 | u128::from(run) << 64 | u128::from(hash) << 32 | u128::from(low)
}

/// The minute of a `by_id` key.
fn minute_of_key(key: u128) -> u32 {
    (key >> 96) as u32
}

/// The `by_id` key of an archived transfer.
fn id_key(id: &EndToEndId, run: u32, position: u64) -> u128 {
    by_id_key(crate::store::id_minute(id), run, hash_of(id), position as u32)
}

/// The archive file beside a journal file.
pub fn beside(journal: &Path) -> PathBuf {
    journal.with_file_name("archive.redb")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ponte_domain::{Account, AccountType, IdKind, ParticipantId, TransferState};

    const T0: TimestampMs = 1_795_730_100_000;

    /// Transfer `k`, made and settled at `T0 + k` seconds, in cycle 1 + k / 300.
    fn archived(k: u64) -> ArchivedTransfer {
        let bank = |code| ParticipantId::new(code).unwrap();
        let account = |code| Account::new(bank(code), "1", "123", AccountType::Checking).unwrap();
        let at = T0 + k as i64 * 1_000;
        let suffix = format!("{k:011}");
        ArchivedTransfer {
            position: k,
            transfer: ponte_ledger::Transfer {
                id: EndToEndId::from_parts(IdKind::Payment, bank(10000001), at, suffix.as_bytes().try_into().unwrap()),
                payer: account(10000001),
                payee: account(10000002),
                amount: Amount::from_minor(100 + k as i64),
                state: TransferState::Settled,
                reason: None,
                created_at: at,
                settled_at: Some(at + 1),
                deadline: 0,
                digest: 0,
                returned: Amount::ZERO,
                cycle: 1 + (k / 300) as u32,
            },
            original: None,
        }
    }

    fn ops(range: std::ops::Range<u64>) -> Vec<NumberedOp> {
        range.map(|k| NumberedOp { number: k, op: ArchiveOp::Transfer(Box::new(archived(k))) }).collect()
    }

    fn positions_of_cycle(archive: &EmbeddedArchive, cycle: u32) -> Vec<u64> {
        let mut seen = Vec::new();
        archive
            .cycle(cycle, u64::MAX, &mut |a| {
                seen.push(a.transfer.position);
                Ok(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn retention_removes_whole_blocks_past_it_and_everything_that_points_at_them() {
        let dir = tempfile::tempdir().unwrap();
        let archive = EmbeddedArchive::open(&dir.path().join("archive.redb")).unwrap();
        // Writes of uneven sizes: several runs per minute, blocks across them.
        for range in [0..100, 100..700, 700..701, 701..1_000] {
            archive.write(&ops(range)).unwrap();
        }
        // Blocks: 0..100, 100..356, 356..612, 612..700, 700..701, 701..957, 957..1000.
        // Past retention: transfers settled before T0 + 650 s; the block
        // 612..700 holds younger ones, so it and all after it stay.
        let removed = archive.expire(T0 + 650 * 1_000).unwrap();
        assert_eq!(removed, 612);
        for k in [0, 99, 100, 355, 611] {
            assert!(archive.transfer(&archived(k).transfer.id).unwrap().is_none(), "{k} is past retention");
        }
        for k in [612, 650, 700, 999] {
            let found = archive.transfer(&archived(k).transfer.id).unwrap().expect("kept");
            assert_eq!(found.transfer, archived(k));
        }
        assert!(positions_of_cycle(&archive, 1).is_empty());
        assert!(positions_of_cycle(&archive, 2).is_empty(), "positions 300..600 went");
        assert_eq!(positions_of_cycle(&archive, 3), (612..900).collect::<Vec<_>>());
        assert_eq!(positions_of_cycle(&archive, 4), (900..1_000).collect::<Vec<_>>());
        // No index entry or run is left pointing at a removed block.
        let txn = archive.db.begin_read().unwrap();
        let by_id = txn.open_table(BY_ID).unwrap();
        assert_eq!(by_id.len().unwrap(), 388);
        assert!(by_id.iter().unwrap().all(|row| row.unwrap().1.value() >= 612));
        let runs: Vec<(u32, u32)> =
            txn.open_table(RUNS).unwrap().iter().unwrap().map(|r| r.unwrap().0.value()).collect();
        assert!(runs.iter().all(|&(_, run)| run >= 100), "the runs of 0..100 and 100..700 before 612 went: {runs:?}");
        assert!(
            runs.contains(&(crate::store::id_minute(&archived(650).transfer.id), 100)),
            "run 100 still holds 612..700"
        );
        drop(txn);
        // Again, later: the rest goes too.
        assert_eq!(archive.expire(T0 + 2_000 * 1_000).unwrap(), 388);
        assert!(archive.transfer(&archived(999).transfer.id).unwrap().is_none());
        let txn = archive.db.begin_read().unwrap();
        assert_eq!(txn.open_table(BY_ID).unwrap().len().unwrap(), 0);
        assert_eq!(txn.open_table(RUNS).unwrap().len().unwrap(), 0);
        assert_eq!(txn.open_table(CYCLES).unwrap().len().unwrap(), 0);
    }

    #[test]
    fn a_file_in_another_layout_is_refused_by_name_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(TableDefinition::<u64, &[u8]>::new("transfers"))
                .unwrap()
                .insert(0, b"x".as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let err = EmbeddedArchive::open(&path).unwrap_err().to_string();
        assert!(err.contains("archive format 1") && err.contains("format 2"), "{err}");
        let other = dir.path().join("other.redb");
        {
            let db = Database::create(&other).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("format", 9).unwrap();
            txn.commit().unwrap();
        }
        let err = EmbeddedArchive::open(&other).unwrap_err().to_string();
        assert!(err.contains("archive format 9"), "{err}");
        // A fresh file records its format and opens again.
        let fresh = dir.path().join("fresh.redb");
        drop(EmbeddedArchive::open(&fresh).unwrap());
        EmbeddedArchive::open(&fresh).unwrap();
    }
}
