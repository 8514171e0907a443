//! The journal: an append-only, durable list of records on an embedded store.
//!
//! Each record holds the encoded events of one engine batch. The store is
//! [redb](https://docs.rs/redb): a maintained, crash-safe embedded B-tree
//! with checksummed commits. [`Journal::append`] writes any number of
//! records in one write transaction committed with `Durability::Immediate`
//! (an fsync), so a group of batches costs one disk flush. A crash (even
//! `kill -9` or a torn write) leaves the file at its last committed state;
//! redb verifies that on open.

use super::snapshot_files::SnapshotDir;
use super::{ReplayError, Snapshots, Store, StoreError, Visit};
use redb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format_version";
/// The first record still held; records before it were trimmed because a
/// snapshot covers them (absent: 0).
const FIRST_KEY: &str = "first_record";
/// Records deleted per trim transaction: short enough that the journal
/// thread, waiting for its next append, never waits long (a loaded
/// switch's records are tens of kilobytes each).
const TRIM_CHUNK: u64 = 256;
/// Bumped whenever the record layout changes. 2: each record starts with
/// the xxh3-64 of the rest, checked on replay (redb does not verify leaf
/// contents on read: a flipped bit would replay as a different event).
/// Format 1 journals (no checksums) are still read.
const FORMAT_VERSION: u64 = 2;
const CHECKSUM_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal store at {path}: {source}")]
    Store { path: PathBuf, source: Box<redb::Error> },
    #[error("journal at {path} has format version {found}; this build reads version {FORMAT_VERSION}")]
    Format { path: PathBuf, found: u64 },
    #[error("journal at {path} is in use by another process (is a switch already running on this data directory?)")]
    Locked { path: PathBuf },
    #[error("journal at {path} is damaged ({detail}); restore it from a replica or backup")]
    Damaged { path: PathBuf, detail: String },
}

/// Runs `f`, turning a panic inside the store (redb panics on some damaged
/// pages instead of returning an error) into [`JournalError::Damaged`], so a
/// damaged file is refused with a clear message instead of crashing.
fn guarded<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, JournalError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the store failed while reading it");
        JournalError::Damaged {
            path: path.to_path_buf(),
            detail: format!("the store failed while reading it: {detail}"),
        }
    })
}

/// The durable journal. One writer (the journal thread) at a time.
pub struct Journal {
    db: Arc<Database>,
    path: PathBuf,
    next_sequence: u64,
    first: u64,
    /// Whether records carry checksums (format 2 and later).
    checksummed: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).field("next_sequence", &self.next_sequence).finish()
    }
}

/// redb's page cache for the journal. The journal is written once and read
/// once (replay at start), so a cache buys nothing after a commit; redb's
/// default (1 GiB) kept every page written in the last gigabyte of journal,
/// and filling it meant fresh memory on every commit: on a loaded switch the
/// kernel zeroed a huge page in the journal thread every few commits, a
/// 4-10 ms stall each that the whole pipeline waited behind. Half the cache
/// may hold one commit's pages before redb writes them early, so 64 MiB keeps
/// a large group commit (an envelope's batches) in one write.
const CACHE_BYTES: usize = 64 << 20;

impl Journal {
    /// Opens (creating if needed) the journal file at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        guarded(path, || Journal::open_unguarded(path))?
    }

    fn open_unguarded(path: &Path) -> Result<Journal, JournalError> {
        let path = path.to_path_buf();
        let store = |e: redb::Error| JournalError::Store { path: path.clone(), source: Box::new(e) };
        let started = std::time::Instant::now();
        let db = match Builder::new().set_cache_size(CACHE_BYTES).create(&path) {
            Ok(db) => {
                tracing::debug!(journal = %path.display(), ms = started.elapsed().as_millis() as u64, "journal file opened");
                db
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(JournalError::Locked { path });
            }
            Err(e) => return Err(store(e.into())),
        };
        let txn = db.begin_write().map_err(|e| store(e.into()))?;
        let mut checksummed = true;
        let (first, next_sequence) = {
            let mut meta = txn.open_table(META).map_err(|e| store(e.into()))?;
            let found = meta.get(FORMAT_KEY).map_err(|e| store(e.into()))?.map(|v| v.value());
            match found {
                Some(1) => checksummed = false,
                Some(FORMAT_VERSION) => {}
                Some(found) => return Err(JournalError::Format { path, found }),
                None => {
                    meta.insert(FORMAT_KEY, FORMAT_VERSION).map_err(|e| store(e.into()))?;
                }
            }
            let first = meta.get(FIRST_KEY).map_err(|e| store(e.into()))?.map_or(0, |v| v.value());
            let records = txn.open_table(RECORDS).map_err(|e| store(e.into()))?;
            let last = records.last().map_err(|e| store(e.into()))?.map(|(k, _)| k.value());
            // Trimmed to nothing, the journal goes on from its first record.
            (first, last.map_or(first, |k| k + 1).max(first))
        };
        txn.commit().map_err(|e| store(e.into()))?;
        Ok(Journal { db: Arc::new(db), path, next_sequence, first, checksummed })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records written so far.
    pub fn len(&self) -> u64 {
        self.next_sequence
    }

    pub fn is_empty(&self) -> bool {
        self.next_sequence == 0
    }

    fn store_error(&self, e: impl Into<redb::Error>) -> JournalError {
        JournalError::Store { path: self.path.clone(), source: Box::new(e.into()) }
    }

    /// Appends `records` in order and returns once they are on disk (fsync).
    pub fn append<'a>(&mut self, records: impl IntoIterator<Item = &'a [u8]>) -> Result<(), JournalError> {
        let txn = self.db.begin_write().map_err(|e| self.store_error(e))?;
        let mut sequence = self.next_sequence;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| self.store_error(e))?;
            let mut framed = Vec::new();
            for record in records {
                if record.is_empty() {
                    continue;
                }
                let stored = if self.checksummed {
                    framed.clear();
                    framed.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(record).to_le_bytes());
                    framed.extend_from_slice(record);
                    framed.as_slice()
                } else {
                    record
                };
                table.insert(sequence, stored).map_err(|e| self.store_error(e))?;
                sequence += 1;
            }
        }
        // Default durability is Immediate: commit returns after fsync.
        txn.commit().map_err(|e| self.store_error(e))?;
        self.next_sequence = sequence;
        Ok(())
    }

    /// Calls `visit` with every record from `from`, oldest first.
    pub fn replay(&self, from: u64, visit: impl FnMut(u64, &[u8]) -> Result<(), String>) -> Result<u64, ReplayError> {
        let reader = Reader { db: &self.db, path: &self.path, checksummed: self.checksummed };
        guarded(&self.path, || reader.read(from..u64::MAX, visit))?
    }
}

/// Reads records with their checksums checked, from any thread.
struct Reader<'a> {
    db: &'a Database,
    path: &'a Path,
    checksummed: bool,
}

impl Reader<'_> {
    fn store_error(&self, e: impl Into<redb::Error>) -> JournalError {
        JournalError::Store { path: self.path.to_path_buf(), source: Box::new(e.into()) }
    }

    fn read(
        &self,
        range: std::ops::Range<u64>,
        mut visit: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<u64, ReplayError> {
        let txn = self.db.begin_read().map_err(|e| self.store_error(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.store_error(e))?;
        let mut count = 0;
        for entry in table.range(range).map_err(|e| self.store_error(e))? {
            let (key, value) = entry.map_err(|e| self.store_error(e))?;
            let (sequence, stored) = (key.value(), value.value());
            visit(sequence, self.unframe(sequence, stored)?)
                .map_err(|reason| ReplayError::Record { sequence, reason })?;
            count += 1;
        }
        Ok(count)
    }

    /// The record inside its stored frame, its checksum checked.
    fn unframe<'s>(&self, sequence: u64, stored: &'s [u8]) -> Result<&'s [u8], JournalError> {
        if !self.checksummed {
            return Ok(stored);
        }
        let damaged = |detail: String| JournalError::Damaged { path: self.path.to_path_buf(), detail };
        if stored.len() < CHECKSUM_BYTES {
            return Err(damaged(format!("record {sequence} is shorter than its checksum")));
        }
        let (sum, record) = stored.split_at(CHECKSUM_BYTES);
        if u64::from_le_bytes(sum.try_into().expect("8 bytes")) != xxhash_rust::xxh3::xxh3_64(record) {
            return Err(damaged(format!("record {sequence} fails its checksum")));
        }
        Ok(record)
    }
}

/// The embedded store's snapshots (files in `snapshots/` beside the
/// journal) and its journal, read and trimmed from the snapshot thread.
struct EmbeddedSnapshots {
    db: Arc<Database>,
    path: PathBuf,
    checksummed: bool,
    files: SnapshotDir,
}

impl Snapshots for EmbeddedSnapshots {
    fn describe(&self) -> String {
        self.files.path().display().to_string()
    }

    fn read(&mut self, from: u64, to: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
        let reader = Reader { db: &self.db, path: &self.path, checksummed: self.checksummed };
        guarded(&self.path, || reader.read(from..to, visit))?
    }

    fn list(&mut self) -> Result<Vec<u64>, StoreError> {
        self.files.list()
    }

    fn load(&mut self, journal_records: u64) -> Result<Vec<u8>, StoreError> {
        self.files.load(journal_records)
    }

    fn save(&mut self, journal_records: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        self.files.save(journal_records, snapshot)
    }

    fn remove(&mut self, journal_records: u64) -> Result<(), StoreError> {
        self.files.remove(journal_records)
    }

    fn trim(&mut self, before: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let store = |e: redb::Error| StoreError::from(JournalError::Store { path: path.clone(), source: Box::new(e) });
        loop {
            let mut txn = self.db.begin_write().map_err(|e| store(e.into()))?;
            // Not fsynced on its own: the next append's commit makes it
            // durable, and a crash before that only brings back records a
            // snapshot already covers.
            txn.set_durability(Durability::None).map_err(|e| StoreError::Embedded(Box::new(e)))?;
            let done = {
                let mut meta = txn.open_table(META).map_err(|e| store(e.into()))?;
                let first = meta.get(FIRST_KEY).map_err(|e| store(e.into()))?.map_or(0, |v| v.value());
                if first >= before {
                    true
                } else {
                    let end = before.min(first + TRIM_CHUNK);
                    let mut table = txn.open_table(RECORDS).map_err(|e| store(e.into()))?;
                    table.retain_in(first..end, |_, _| false).map_err(|e| store(e.into()))?;
                    meta.insert(FIRST_KEY, end).map_err(|e| store(e.into()))?;
                    false
                }
            };
            txn.commit().map_err(|e| store(e.into()))?;
            if done {
                return Ok(());
            }
        }
    }
}

impl Store for Journal {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn len(&self) -> u64 {
        self.next_sequence
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<(), StoreError> {
        Journal::append(self, records.iter().copied()).map_err(StoreError::from)
    }

    fn first(&self) -> u64 {
        self.first
    }

    fn replay(&mut self, from: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
        Journal::replay(self, from, visit)
    }

    fn archive(&self, _retention_ms: i64) -> Result<Option<std::sync::Arc<dyn super::Archive>>, StoreError> {
        let archive = super::archive_redb::EmbeddedArchive::open(&super::archive_redb::beside(&self.path))?;
        Ok(Some(std::sync::Arc::new(archive)))
    }

    fn snapshots(&self) -> Option<Box<dyn Snapshots>> {
        Some(Box::new(EmbeddedSnapshots {
            db: self.db.clone(),
            path: self.path.clone(),
            checksummed: self.checksummed,
            files: snapshot_dir(&self.path),
        }))
    }
}

/// The snapshot files of the journal at `journal_path`: `snapshots/` beside it.
pub(crate) fn snapshot_dir(journal_path: &Path) -> SnapshotDir {
    SnapshotDir::new(journal_path.with_file_name("snapshots"))
}

impl From<JournalError> for StoreError {
    fn from(error: JournalError) -> Self {
        StoreError::Embedded(Box::new(error))
    }
}

impl From<JournalError> for ReplayError {
    fn from(error: JournalError) -> Self {
        ReplayError::Store(StoreError::from(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        {
            let mut journal = Journal::open(&path).unwrap();
            journal.append([&b"one"[..], &b"two"[..]]).unwrap();
            journal.append([&b""[..], &b"three"[..]]).unwrap();
            assert_eq!(journal.len(), 3);
        }
        let journal = Journal::open(&path).unwrap();
        assert_eq!(journal.len(), 3);
        let mut seen = Vec::new();
        journal
            .replay(0, |seq, bytes| {
                seen.push((seq, bytes.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(0, b"one".to_vec()), (1, b"two".to_vec()), (2, b"three".to_vec())]);
    }

    fn records_from(journal: &Journal, from: u64) -> Vec<u64> {
        let mut seen = Vec::new();
        journal
            .replay(from, |seq, _| {
                seen.push(seq);
                Ok(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn trimming_drops_records_before_a_point_and_survives_reopen_even_when_all_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        let records: Vec<Vec<u8>> = (0..10_000_u32).map(|n| n.to_le_bytes().to_vec()).collect();
        {
            let mut journal = Journal::open(&path).unwrap();
            journal.append(records.iter().map(Vec::as_slice)).unwrap();
            let mut snapshots = Store::snapshots(&journal).unwrap();
            // More than one trim chunk, while the writer keeps the file open.
            snapshots.trim(9_000).unwrap();
            assert_eq!(records_from(&journal, 0), (9_000..10_000).collect::<Vec<_>>());
            let mut read = Vec::new();
            snapshots
                .read(9_500, 9_503, &mut |seq, bytes| {
                    read.push((seq, bytes.to_vec()));
                    Ok(())
                })
                .unwrap();
            assert_eq!(
                read,
                [(9_500, records[9_500].clone()), (9_501, records[9_501].clone()), (9_502, records[9_502].clone())]
            );
            journal.append([&b"after"[..]]).unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        assert_eq!((Store::first(&journal), journal.len()), (9_000, 10_001));
        Store::snapshots(&journal).unwrap().trim(10_001).unwrap();
        drop(journal);
        let mut journal = Journal::open(&path).unwrap();
        assert_eq!((Store::first(&journal), journal.len()), (10_001, 10_001), "trimmed to nothing, numbering goes on");
        journal.append([&b"next"[..]]).unwrap();
        assert_eq!(records_from(&journal, 0), [10_001]);
    }

    #[test]
    fn a_format_1_journal_without_checksums_is_still_read_and_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(FORMAT_KEY, 1).unwrap();
            txn.open_table(RECORDS).unwrap().insert(0, &b"old"[..]).unwrap();
            txn.commit().unwrap();
        }
        let mut journal = Journal::open(&path).unwrap();
        journal.append([&b"new"[..]]).unwrap();
        let mut seen = Vec::new();
        journal
            .replay(0, |_, bytes| {
                seen.push(bytes.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [b"old".to_vec(), b"new".to_vec()]);
    }

    #[test]
    fn a_record_that_fails_its_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        Journal::open(&path).unwrap().append([&b"payment"[..]]).unwrap();
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let mut stored = txn.open_table(RECORDS).unwrap().get(0).unwrap().unwrap().value().to_vec();
            *stored.last_mut().unwrap() ^= 1;
            txn.open_table(RECORDS).unwrap().insert(0, stored.as_slice()).unwrap();
            txn.commit().unwrap();
        }
        let error = Journal::open(&path).unwrap().replay(0, |_, _| Ok(())).unwrap_err().to_string();
        assert!(error.contains("record 0 fails its checksum") && error.contains("restore"), "{error}");
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        let _first = Journal::open(&path).unwrap();
        assert!(matches!(Journal::open(&path), Err(JournalError::Locked { .. })));
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
        let error = Journal::open(&path).unwrap_err();
        assert!(error.to_string().contains("journal store at"), "{error}");
    }
}
