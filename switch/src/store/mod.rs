//! The storage trait: where the journal of engine events lives.
//!
//! The switch's whole state — payments and returns, directory keys and
//! claims, participants and limits, settlement cycles — is a deterministic
//! function of its journal (see [`ponte_ledger`]), so one durable,
//! append-only list of records is all a backend has to keep. Two backends:
//!
//! - [`redb::Journal`]: the embedded default, a redb file with an
//!   fsync per group commit. Nothing to install.
//! - [`cql::CqlStore`]: Apache Cassandra or ScyllaDB through the
//!   `scylla` driver, for a deployment that keeps its state on a cluster.
//!   One node at a time is the writer (a lease plus epoch fencing); other
//!   nodes wait as standbys and take over when the writer is gone.
//!
//! Both pass the same contract suite (`switch/tests/storage_contract.rs`).
//! A backend must:
//! - make every record of an [`Store::append`] durable before it returns Ok,
//!   and keep them in order, numbered from 0 with no gaps;
//! - replay exactly the acknowledged records from a given one, oldest first;
//! - refuse, with an error and without acknowledging, once it can no longer
//!   guarantee the two points above (disk error, fenced writer).

pub mod archive_redb;
pub mod cql;
pub mod redb;
mod snapshot_files;

pub use self::redb::Journal;
pub use cql::CqlStore;
pub(crate) use snapshot_files::SnapshotDir;

/// The minute an end-to-end id was made, in minutes since the Unix epoch
/// (0 for an id without a readable stamp): both archives place an id by
/// it, so a lookup goes where its write went.
pub(crate) fn id_minute(id: &ponte_domain::EndToEndId) -> u32 {
    id.created_at_ms().map_or(0, |ms| (ms / 60_000) as u32)
}

/// An xxh3 of the id with a fixed seed (archives store what it places).
pub(crate) fn id_hash(id: &ponte_domain::EndToEndId) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// A durable, append-only journal of records (each the encoded events of one
/// engine batch). Used by one thread at a time: the journal thread.
pub trait Store: Send + 'static {
    /// Where the records live, for logs and error messages.
    fn describe(&self) -> String;

    /// Number of records acknowledged so far.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `records` in order (empty ones are skipped) and returns once
    /// all of them are durable. On error none of them may be acknowledged.
    fn append(&mut self, records: &[&[u8]]) -> Result<(), StoreError>;

    /// Called by the journal thread when it is idle (about once a second):
    /// an error means this store can no longer accept appends (for example
    /// this node lost its writer lease), so the switch stops at once instead
    /// of on its next payment.
    fn check(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The first record still held: 0, or the first after those trimmed
    /// because a snapshot covers them.
    fn first(&self) -> u64 {
        0
    }

    /// Calls `visit` with every acknowledged record from record `from`
    /// (at least [`Store::first`]), oldest first, and returns how many
    /// there were.
    fn replay(&mut self, from: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError>;

    /// The engine snapshots kept beside this journal, and a reader of the
    /// journal for another thread; `None` when this backend keeps none (the
    /// whole journal is then replayed at start).
    fn snapshots(&self) -> Option<Box<dyn Snapshots>> {
        None
    }

    /// The archive of transfers that left the engine's memory (opened
    /// once, at start), keeping them `retention_ms` after they settle.
    /// `None`: this store has none, and the engine keeps every transfer in
    /// memory.
    fn archive(&self, retention_ms: i64) -> Result<Option<std::sync::Arc<dyn Archive>>, StoreError> {
        let _ = retention_ms;
        Ok(None)
    }
}

/// Where transfers go when they leave the engine's memory (see
/// [`ponte_ledger::archive`]): written by one thread in op order, read by
/// any number of queries at once.
pub trait Archive: Send + Sync + 'static {
    fn describe(&self) -> String;

    /// How many archive ops are written: the next op's number.
    fn written(&self) -> Result<u64, StoreError>;

    /// Writes a batch of ops, in order, durably; ops written before are
    /// written again harmlessly.
    fn write(&self, ops: &[ponte_ledger::NumberedOp]) -> Result<(), StoreError>;

    /// An archived transfer by end-to-end id.
    fn transfer(&self, id: &ponte_domain::EndToEndId) -> Result<Option<Archived>, StoreError>;

    /// The archived transfers of `cycle` at positions below `below`, in
    /// position order.
    fn cycle(
        &self,
        cycle: u32,
        below: u64,
        visit: &mut dyn FnMut(Archived) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.cycle_from(cycle, 0, below, &mut |a| visit(a).map(|()| true))
    }

    /// The archived transfers of `cycle` at positions `from..below`, in
    /// position order, until `visit` answers `false`. A page of a cycle
    /// starts where the last one ended and stops once full, so reading a
    /// cycle by pages reads each of its transfers about once.
    fn cycle_from(
        &self,
        cycle: u32,
        from: u64,
        below: u64,
        visit: &mut dyn FnMut(Archived) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// Items `from..to` of complete envelope `number`, in index order
    /// (those the archive holds).
    fn envelope_items(&self, number: u64, from: u32, to: u32) -> Result<Vec<ponte_ledger::ItemView>, StoreError>;

    /// Deletes archived transfers settled (or recorded) before `before`,
    /// and items of envelopes complete before it (retention); returns how
    /// many transfers.
    fn expire(&self, before: ponte_domain::TimestampMs) -> Result<u64, StoreError>;
}

/// A piece of an envelope's archived items as the archives store it:
/// postcard, then LZ4.
pub(crate) fn encode_items(items: &[ponte_ledger::ItemView]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(&postcard::to_allocvec(items).expect("encoding to a Vec"))
}

/// Reads back [`encode_items`].
pub(crate) fn decode_items(bytes: &[u8]) -> Result<Vec<ponte_ledger::ItemView>, String> {
    let raw = lz4_flex::decompress_size_prepended(bytes)
        .map_err(|e| format!("an archived envelope piece does not decompress: {e}"))?;
    postcard::from_bytes(&raw).map_err(|e| format!("an archived envelope piece does not decode: {e}"))
}

/// An archived transfer and what was returned of it since it was archived.
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    pub transfer: ponte_ledger::ArchivedTransfer,
    pub late: ponte_domain::Amount,
}

/// Engine snapshots and the journal behind them, used by the snapshot
/// thread while the journal thread keeps writing. A snapshot is saved
/// whole and durable before anything it covers is trimmed.
pub trait Snapshots: Send + 'static {
    /// Where the snapshots live, for logs.
    fn describe(&self) -> String;

    /// Calls `visit` with acknowledged records `from..to`, oldest first.
    fn read(&mut self, from: u64, to: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError>;

    /// The saved snapshots, by the journal records each covers, newest first.
    fn list(&mut self) -> Result<Vec<u64>, StoreError>;

    /// The bytes of the snapshot covering `journal_records` records.
    fn load(&mut self, journal_records: u64) -> Result<Vec<u8>, StoreError>;

    /// Saves a snapshot durably (all or nothing: a crash leaves the
    /// previous ones as they were).
    fn save(&mut self, journal_records: u64, snapshot: &[u8]) -> Result<(), StoreError>;

    fn remove(&mut self, journal_records: u64) -> Result<(), StoreError>;

    /// Drops journal records before `before` (a durable snapshot covers
    /// them), a bounded amount at a time so the writer never waits long.
    fn trim(&mut self, before: u64) -> Result<(), StoreError>;
}

/// What [`Store::replay`] calls with each record's sequence number and
/// bytes; an error stops the replay.
pub type Visit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

/// Why a store cannot open, append or replay. Messages say what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded store's own error ([`redb::JournalError`]), boxed so
    /// this trait's module does not depend on one of its backends.
    #[error("{0}")]
    Embedded(Box<dyn std::error::Error + Send + Sync>),
    #[error("store {target}: {detail}")]
    Cql { target: String, detail: String },
    #[error(
        "store {target}: this node is no longer the journal writer (node {by:?} holds epoch {epoch}); \
         it stops without acknowledging anything more"
    )]
    Fenced { target: String, by: String, epoch: i64 },
    #[error(
        "store {target}: schema version {found} was written by a newer Ponte (this build knows up to {known}); upgrade this node"
    )]
    SchemaTooNew { target: String, found: i32, known: i32 },
    #[error("store {target}: journal format {found}; this build reads format {known}")]
    Format { target: String, found: i64, known: i64 },
    #[error(
        "store {target} cannot make records durable now ({detail}): no quorum or unreachable; nothing is \
         acknowledged until it can, and the switch keeps retrying"
    )]
    Unavailable { target: String, detail: String },
    #[error("store {target} is damaged: {detail}; restore it from a replica or backup")]
    Damaged { target: String, detail: String },
    #[error("store {target}: a record of {bytes} bytes is over the {max}-byte bound")]
    RecordTooLarge { target: String, bytes: usize, max: usize },
    #[error("snapshot {path}: {source}")]
    Snapshot { path: std::path::PathBuf, source: std::io::Error },
    #[error("archive {path}: {detail}")]
    Archive { path: std::path::PathBuf, detail: String },
    #[error("bad store address {address:?}: {reason}")]
    Address { address: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("journal record {sequence} cannot be replayed: {reason}")]
    Record { sequence: u64, reason: String },
}
