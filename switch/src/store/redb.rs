//! The journal: an append-only, durable list of records on an embedded store.
//!
//! Each record holds the encoded events of one engine batch. The store is
//! [redb](https://docs.rs/redb): a maintained, crash-safe embedded B-tree
//! with checksummed commits. [`Journal::append`] writes any number of
//! records in one write transaction committed with `Durability::Immediate`
//! (an fsync), so a group of batches costs one disk flush. A crash (even
//! `kill -9` or a torn write) leaves the file at its last committed state;
//! redb verifies that on open.

use super::{ReplayError, Store, StoreError, Visit};
use redb::{Builder, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_KEY: &str = "format_version";
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
    db: Database,
    path: PathBuf,
    next_sequence: u64,
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
        let db = match Builder::new().set_cache_size(CACHE_BYTES).create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(JournalError::Locked { path });
            }
            Err(e) => return Err(store(e.into())),
        };
        let txn = db.begin_write().map_err(|e| store(e.into()))?;
        let mut checksummed = true;
        let next_sequence = {
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
            let records = txn.open_table(RECORDS).map_err(|e| store(e.into()))?;
            let last = records.last().map_err(|e| store(e.into()))?.map(|(k, _)| k.value());
            last.map_or(0, |k| k + 1)
        };
        txn.commit().map_err(|e| store(e.into()))?;
        Ok(Journal { db, path, next_sequence, checksummed })
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

    /// Calls `visit` with every record, oldest first.
    pub fn replay(&self, visit: impl FnMut(u64, &[u8]) -> Result<(), String>) -> Result<u64, ReplayError> {
        guarded(&self.path, || self.replay_unguarded(visit))?
    }

    fn replay_unguarded(&self, mut visit: impl FnMut(u64, &[u8]) -> Result<(), String>) -> Result<u64, ReplayError> {
        let txn = self.db.begin_read().map_err(|e| self.store_error(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.store_error(e))?;
        let count = table.len().map_err(|e| self.store_error(e))?;
        for entry in table.iter().map_err(|e| self.store_error(e))? {
            let (key, value) = entry.map_err(|e| self.store_error(e))?;
            let (sequence, stored) = (key.value(), value.value());
            let record = if self.checksummed {
                let damaged = |detail: String| JournalError::Damaged { path: self.path.clone(), detail };
                if stored.len() < CHECKSUM_BYTES {
                    return Err(damaged(format!("record {sequence} is shorter than its checksum")).into());
                }
                let (sum, record) = stored.split_at(CHECKSUM_BYTES);
                if u64::from_le_bytes(sum.try_into().expect("8 bytes")) != xxhash_rust::xxh3::xxh3_64(record) {
                    return Err(damaged(format!("record {sequence} fails its checksum")).into());
                }
                record
            } else {
                stored
            };
            visit(sequence, record).map_err(|reason| ReplayError::Record { sequence, reason })?;
        }
        Ok(count)
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

    fn replay(&mut self, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
        Journal::replay(self, visit)
    }
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
            .replay(|seq, bytes| {
                seen.push((seq, bytes.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(0, b"one".to_vec()), (1, b"two".to_vec()), (2, b"three".to_vec())]);
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
            .replay(|_, bytes| {
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
        let error = Journal::open(&path).unwrap().replay(|_, _| Ok(())).unwrap_err().to_string();
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
