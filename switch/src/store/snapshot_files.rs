//! Snapshot files in a directory: `snapshot-<journal records, 20 digits>.bin`,
//! each written to a temporary name, fsynced, renamed into place and the
//! directory fsynced, so a crash leaves either the whole file or none.

use super::StoreError;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".bin";

#[derive(Debug, Clone)]
pub(crate) struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    pub(crate) fn new(dir: PathBuf) -> SnapshotDir {
        SnapshotDir { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    fn file_of(&self, journal_records: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{journal_records:020}{SUFFIX}"))
    }

    fn error(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Snapshot { path: path.to_path_buf(), source }
    }

    /// The saved snapshots, newest first. Temporary files of a write cut
    /// short, and anything else in the folder, are not snapshots.
    pub(crate) fn list(&self) -> Result<Vec<u64>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::error(&self.dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let name = entry.map_err(|e| Self::error(&self.dir, e))?.file_name();
            let records = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|n| n.strip_suffix(SUFFIX))
                .filter(|digits| digits.len() == 20)
                .and_then(|digits| digits.parse::<u64>().ok());
            found.extend(records);
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        Ok(found)
    }

    pub(crate) fn load(&self, journal_records: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.file_of(journal_records);
        std::fs::read(&path).map_err(|e| Self::error(&path, e))
    }

    pub(super) fn save(&self, journal_records: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Self::error(&self.dir, e))?;
        let path = self.file_of(journal_records);
        let temporary = path.with_extension("tmp");
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(snapshot)?;
            file.sync_all()
        })();
        written.map_err(|e| Self::error(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| Self::error(&path, e))?;
        // The rename is durable once the directory is.
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| Self::error(&self.dir, e))
    }

    pub(super) fn remove(&self, journal_records: u64) -> Result<(), StoreError> {
        let path = self.file_of(journal_records);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::error(&path, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_listed_newest_first_and_strays_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = SnapshotDir::new(dir.path().join("snapshots"));
        assert_eq!(snapshots.list().unwrap(), Vec::<u64>::new(), "no folder yet: no snapshots");
        snapshots.save(7, b"seven").unwrap();
        snapshots.save(1_000, b"a thousand").unwrap();
        std::fs::write(dir.path().join("snapshots/snapshot-00000000000000002000.tmp"), b"cut short").unwrap();
        std::fs::write(dir.path().join("snapshots/notes.txt"), b"not a snapshot").unwrap();
        assert_eq!(snapshots.list().unwrap(), vec![1_000, 7]);
        assert_eq!(snapshots.load(7).unwrap(), b"seven");
        snapshots.remove(7).unwrap();
        snapshots.remove(7).unwrap();
        assert_eq!(snapshots.list().unwrap(), vec![1_000]);
    }
}
