//! The Apache Cassandra / ScyllaDB backend: the journal on a CQL cluster.
//!
//! Selected with `--store cql://HOST:PORT[,HOST:PORT...]/KEYSPACE[?options]`
//! (options: `replication_factor` (default 1), `node` (this node's name,
//! default host name and process id), `stream` (default `main`),
//! `lease_ttl_s` (default 5)). The keyspace and tables are created on first
//! start by numbered migrations recorded in `schema_migrations`; a keyspace
//! migrated by a newer build is refused.
//!
//! # Tables
//! ```text
//! journal       ((stream, chunk), seq, epoch) -> record blob
//! journal_head  (stream) -> epoch, head, writer, format
//! writer_lease  (stream) -> owner                (row with a TTL)
//! snapshots, snapshot_parts, journal_first       engine snapshots (see `snapshots`)
//! ```
//! Money needs no columns of its own: every state change is an engine event
//! in a record, with amounts as integer minor units (`i64`), and the switch
//! rebuilds payments, keys, limits and cycles from them.
//!
//! # One writer, fenced
//! Exactly one node appends to a stream; that is what makes end-to-end ids
//! and directory keys unique across nodes (the engine checks them against
//! the whole history before anything is journaled). The writer:
//! 1. takes the lease (`INSERT .. IF NOT EXISTS USING TTL`), renewing it
//!    every third of its TTL; a node that finds it held waits as a standby
//!    and takes it when it lapses (the writer died or stopped);
//! 2. raises the epoch in `journal_head` by compare-and-set (Paxos), which
//!    fences every earlier writer at once, whatever its lease thinks;
//! 3. appends a group by writing each record as a row keyed
//!    (stream, seq, its epoch) — idempotent, so retried — and then moving
//!    the head with `UPDATE journal_head SET head = new IF epoch = mine AND
//!    head = old`. The records are acknowledged only when that CAS applies.
//!
//! A fenced writer's rows may sit at sequence numbers the next writer also
//! uses; readers take, for each sequence number below the head, the row of
//! the highest epoch, which is the one whose CAS moved the head past it
//! (a later epoch only writes at or above the head it found when fencing).
//! Only the row inserts and reads are retried; a CAS whose outcome is
//! unknown (timeout) is resolved by retrying the same conditional update,
//! which cannot apply twice and reports the head it finds.
//!
//! With `commitlog_sync: batch` (see `scripts/cassandra`) a write is
//! acknowledged by each replica after its commit log is fsync'd, so an
//! acknowledged payment survives the loss of the switch process and of the
//! database process. With replication factor N and QUORUM writes it also
//! survives the loss of a minority of database nodes.
//!
//! # Threads
//! The store owns a small tokio runtime (one worker) for the driver and the
//! lease renewal. Its methods block: call them from the journal thread or a
//! blocking task, never from inside an async task.

use lease::advance_head;
use lease::lease_owner;
use lease::release_lease;
use lease::renew_lease;
use schema::connect;
mod archive;
mod lease;
mod schema;
mod snapshots;

use super::{ReplayError, Snapshots, Store, StoreError, Visit};
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Journal event format, as in the embedded journal.
const FORMAT_VERSION: i64 = 1;
/// Records per partition of `journal`: keeps partitions small (a record is
/// one engine batch, at most a few hundred kB) and replay reads sequential.
const CHUNK_RECORDS: i64 = 256;
/// Largest record written (an engine batch is far smaller; Cassandra's
/// default mutation limit is half a 32 MiB commit-log segment).
pub const RECORD_BYTES_MAX: usize = 8 << 20;
/// Row inserts in flight at once per append.
const INSERTS_IN_FLIGHT_MAX: usize = 32;
/// Attempts for a statement that is safe to send again (row insert, read,
/// or the head CAS, which cannot apply twice) before giving up.
const ATTEMPTS_MAX: u32 = 5;
/// Rows per page when replaying.
const REPLAY_PAGE_ROWS: i32 = 64;
/// How often a node starting while the cluster cannot answer tries again.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// Where and how to reach the cluster; parsed from a `cql://` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlConfig {
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub replication_factor: u32,
    /// Whether the address set `replication_factor` (then an existing
    /// keyspace with another factor is refused instead of used as it is).
    pub replication_factor_asked: bool,
    /// This node's name in the lease (shown to standbys and in fencing errors).
    pub node: String,
    /// The journal stream: one per engine shard (see docs/STORAGE.md).
    pub stream: String,
    pub lease_ttl_s: u32,
    /// How long [`CqlStore::open`] waits for the lease as a standby; `None`: forever.
    pub standby_wait_max: Option<Duration>,
}

impl CqlConfig {
    /// Parses `cql://HOST:PORT[,HOST:PORT..]/KEYSPACE[?key=value&..]`.
    pub fn parse(address: &str) -> Result<CqlConfig, StoreError> {
        let bad = |reason: &str| StoreError::Address { address: address.to_string(), reason: reason.to_string() };
        let rest = address.strip_prefix("cql://").ok_or_else(|| bad("must start with cql://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, keyspace) = rest.split_once('/').ok_or_else(|| bad("missing /KEYSPACE"))?;
        let nodes: Vec<String> = hosts.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect();
        if nodes.is_empty() {
            return Err(bad("no HOST:PORT"));
        }
        if nodes.iter().any(|n| !n.contains(':')) {
            return Err(bad("every node needs HOST:PORT"));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 48
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        };
        if !name_ok(keyspace) {
            return Err(bad("the keyspace must be 1-48 letters, digits or _, starting with a letter"));
        }
        let mut config = CqlConfig {
            nodes,
            keyspace: keyspace.to_ascii_lowercase(),
            replication_factor: 1,
            replication_factor_asked: false,
            node: format!("{}-{}", hostname(), std::process::id()),
            stream: "main".into(),
            lease_ttl_s: 5,
            standby_wait_max: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| bad("options are key=value"))?;
            let number = |max: u32| {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| bad(&format!("{key} must be a number from 1 to {max}")))
            };
            match key {
                "replication_factor" => {
                    config.replication_factor = number(9)?;
                    config.replication_factor_asked = true;
                }
                "lease_ttl_s" => config.lease_ttl_s = number(600)?.max(2),
                "node" if !value.is_empty() && value.len() <= 64 => config.node = value.to_string(),
                "stream" if name_ok(value) => config.stream = value.to_string(),
                "node" | "stream" => return Err(bad(&format!("bad {key}"))),
                _ => return Err(bad(&format!("unknown option {key}"))),
            }
        }
        Ok(config)
    }

    fn target(&self) -> String {
        format!("cql://{}/{} (stream {})", self.nodes.join(","), self.keyspace, self.stream)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".into())
}

struct Statements {
    insert_row: PreparedStatement,
    advance_head: PreparedStatement,
    read_head: PreparedStatement,
    read_chunk: PreparedStatement,
    init_head: PreparedStatement,
    bump_epoch: PreparedStatement,
    lease_acquire: PreparedStatement,
    lease_renew: PreparedStatement,
    lease_release: PreparedStatement,
    lease_owner: PreparedStatement,
    snapshots: snapshots::Statements,
    archive: archive::Statements,
}

struct Shared {
    session: Session,
    statements: Statements,
    config: CqlConfig,
    target: String,
    /// Set by the renewal task when the lease could not be kept; appends
    /// then refuse (the epoch CAS would refuse them anyway once a standby
    /// has fenced us, but this stops a writer that cannot reach the cluster).
    lease_lost: AtomicBool,
    /// Set by the renewal task while the lease cannot be renewed because
    /// the cluster cannot answer (no quorum): appends refuse as unavailable
    /// until it is renewed or taken back.
    lease_unsure: AtomicBool,
}

/// The journal on Cassandra / ScyllaDB. See the module docs.
pub struct CqlStore {
    shared: Arc<Shared>,
    /// Shared with the snapshot thread's reader, so the driver's
    /// connections outlive whichever of the two ends last.
    runtime: Option<Arc<tokio::runtime::Runtime>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    epoch: i64,
    /// Next sequence number: the head this writer last moved (or found).
    head: i64,
    /// The first record still held (records before it were trimmed behind a snapshot).
    first: i64,
}

impl std::fmt::Debug for CqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlStore")
            .field("target", &self.shared.target)
            .field("epoch", &self.epoch)
            .field("head", &self.head)
            .finish()
    }
}

/// A node connected to the keyspace that is not (yet) its writer: it can
/// read what the writer commits (records, snapshots, the archive) while it
/// waits, and become the writer once the lease is free.
pub struct CqlStandby {
    shared: Arc<Shared>,
    runtime: Arc<tokio::runtime::Runtime>,
    since: std::time::Instant,
    announced: bool,
}

impl CqlStandby {
    /// Connects and migrates the schema; takes no lease.
    pub fn connect(config: CqlConfig) -> Result<CqlStandby, StoreError> {
        let target = config.target();
        let cql = |detail: String| StoreError::Cql { target: target.clone(), detail };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ponte-cql")
            .enable_all()
            .build()
            .map_err(|e| cql(format!("cannot start the driver's runtime: {e}")))?;
        let since = std::time::Instant::now();
        let mut waiting = false;
        let shared = loop {
            let attempt = runtime.block_on(async {
                let shared = connect(config.clone(), target.clone()).await?;
                lease::init_head(&shared).await?;
                Ok(shared)
            });
            match attempt {
                Ok(shared) => break Arc::new(shared),
                // The cluster cannot answer now (down, unreachable, or too
                // few replicas for QUORUM): wait for it, saying so, rather
                // than exit; a wrong address or schema is said at once.
                Err(error @ (StoreError::Cql { .. } | StoreError::Unavailable { .. }))
                    if config.standby_wait_max.is_none_or(|max| since.elapsed() < max) =>
                {
                    if !waiting {
                        tracing::error!(%error, "the journal store has no quorum or cannot be reached: this node \
                             cannot start (it does not listen until the store answers); retrying every {} s",
                            CONNECT_RETRY.as_secs());
                        metrics::gauge!("ponte_store_available").set(0.0);
                        waiting = true;
                    }
                    std::thread::sleep(CONNECT_RETRY);
                }
                Err(error) => return Err(error),
            }
        };
        if waiting {
            tracing::warn!(target = %shared.target, waited_s = since.elapsed().as_secs(), "the journal store is back: starting");
            metrics::gauge!("ponte_store_available").set(1.0);
        }
        Ok(CqlStandby { shared, runtime: Arc::new(runtime), since, announced: false })
    }

    pub fn describe(&self) -> String {
        self.shared.target.clone()
    }

    /// Journal records the writer has committed.
    pub fn committed(&self) -> Result<u64, StoreError> {
        Ok(self.runtime.block_on(lease::read_head(&self.shared))?.head as u64)
    }

    /// The first journal record still held.
    pub fn first(&self) -> Result<u64, StoreError> {
        Ok(self.runtime.block_on(snapshots::read_first(&self.shared))? as u64)
    }

    /// Calls `visit` with committed records `from..to`, in order.
    pub fn read(&self, from: u64, to: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
        self.runtime.block_on(read_records(&self.shared, from, to, visit))
    }

    pub fn snapshots(&self) -> Box<dyn Snapshots> {
        Box::new(snapshots::CqlSnapshots { shared: self.shared.clone(), runtime: self.runtime.clone() })
    }

    /// The keyspace's archive (see [`Store::archive`]).
    pub fn archive(&self, retention_ms: i64) -> Arc<dyn crate::store::Archive> {
        archive::open(&self.shared, &self.runtime, retention_ms)
    }

    /// How long to wait between two attempts at the lease.
    pub fn poll_interval(&self) -> Duration {
        lease::standby_poll(&self.shared)
    }

    /// One attempt to become the writer: the store, fenced and ready to
    /// append, or this standby back while another node holds the lease
    /// (an error once `standby_wait_max` has passed).
    pub fn try_take_over(mut self) -> Result<Result<CqlStore, CqlStandby>, StoreError> {
        let (shared, runtime) = (self.shared.clone(), self.runtime.clone());
        if !runtime.block_on(lease::try_lease(&shared, self.since, &mut self.announced))? {
            return Ok(Err(self));
        }
        tracing::debug!(target = %shared.target, "standby: took the writer lease");
        let (epoch, head) = runtime.block_on(lease::fence(&shared))?;
        tracing::debug!(target = %shared.target, epoch, head, "standby: fenced the earlier writers");
        let first = runtime.block_on(snapshots::read_first(&shared))?;
        let renewer = Some(runtime.spawn(renew_lease(shared.clone())));
        Ok(Ok(CqlStore { shared, runtime: Some(runtime), renewer, epoch, head, first }))
    }
}

impl CqlStore {
    /// Connects, migrates the schema, waits for the writer lease (as a
    /// standby while another node holds it), fences earlier writers and
    /// reads the head. Blocks.
    pub fn open(config: CqlConfig) -> Result<CqlStore, StoreError> {
        let mut standby = CqlStandby::connect(config)?;
        loop {
            match standby.try_take_over()? {
                Ok(store) => return Ok(store),
                Err(waiting) => {
                    std::thread::sleep(waiting.poll_interval());
                    standby = waiting;
                }
            }
        }
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Stops renewing the lease without releasing it, as a writer that hangs
    /// would. For tests of fencing: another node takes over once it lapses.
    pub fn stop_renewing_lease(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("runtime lives as long as the store").block_on(future)
    }
}

impl Drop for CqlStore {
    fn drop(&mut self) {
        self.stop_renewing_lease();
        let Some(runtime) = self.runtime.take() else { return };
        // Hand the lease over at once on a clean stop, so a standby need not
        // wait for it to lapse. Only where blocking is allowed; elsewhere
        // the TTL frees it.
        if tokio::runtime::Handle::try_current().is_err() && !self.shared.lease_lost.load(Ordering::Relaxed) {
            let shared = self.shared.clone();
            let _ = runtime
                .block_on(async move { tokio::time::timeout(Duration::from_secs(2), release_lease(&shared)).await });
        }
        // The last owner shuts the driver down; a snapshot reader still
        // running keeps it until it ends.
        if let Ok(runtime) = Arc::try_unwrap(runtime) {
            runtime.shutdown_background();
        }
    }
}

impl Store for CqlStore {
    fn describe(&self) -> String {
        self.shared.target.clone()
    }

    fn len(&self) -> u64 {
        self.head as u64
    }

    fn check(&mut self) -> Result<(), StoreError> {
        if self.shared.lease_lost.load(Ordering::Relaxed) {
            let by = self.block_on(lease_owner(&self.shared)).unwrap_or_else(|| "none (the lease lapsed)".into());
            return Err(StoreError::Fenced { target: self.shared.target.clone(), by, epoch: self.epoch });
        }
        if self.shared.lease_unsure.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable {
                target: self.shared.target.clone(),
                detail: "the writer lease cannot be renewed".into(),
            });
        }
        Ok(())
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<(), StoreError> {
        let records: Vec<&[u8]> = records.iter().copied().filter(|r| !r.is_empty()).collect();
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        let shared = &self.shared;
        if let Some(big) = records.iter().find(|r| r.len() > RECORD_BYTES_MAX) {
            return Err(StoreError::RecordTooLarge {
                target: shared.target.clone(),
                bytes: big.len(),
                max: RECORD_BYTES_MAX,
            });
        }
        let (epoch, old) = (self.epoch, self.head);
        let new = old + records.len() as i64;
        self.block_on(async {
            futures::stream::iter(records.iter().enumerate())
                .map(|(i, record)| insert_row(shared, old + i as i64, epoch, record))
                .buffer_unordered(INSERTS_IN_FLIGHT_MAX)
                .try_collect::<()>()
                .await?;
            advance_head(shared, epoch, old, new).await
        })
        .map_err(|error| match error {
            // Rows written again and the head CAS sent again are harmless
            // (same rows; a CAS that applied is recognised), so a failure
            // to reach the cluster is "not now", not "never".
            StoreError::Cql { target, detail } => StoreError::Unavailable { target, detail },
            other => other,
        })?;
        self.head = new;
        Ok(())
    }

    fn first(&self) -> u64 {
        self.first as u64
    }

    fn replay(&mut self, from: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
        let shared = self.shared.clone();
        let head = self.head as u64;
        self.block_on(read_records(&shared, from, head, visit))
    }

    fn snapshots(&self) -> Option<Box<dyn Snapshots>> {
        let runtime = self.runtime.clone()?;
        Some(Box::new(snapshots::CqlSnapshots { shared: self.shared.clone(), runtime }))
    }

    fn archive(&self, retention_ms: i64) -> Result<Option<Arc<dyn crate::store::Archive>>, StoreError> {
        Ok(self.runtime.as_ref().map(|runtime| archive::open(&self.shared, runtime, retention_ms)))
    }
}

/// Calls `visit` with the committed records `from..to` (`to` at most the
/// head), in order; a missing one is damage, never skipped.
async fn read_records(shared: &Shared, from: u64, to: u64, visit: &mut Visit<'_>) -> Result<u64, ReplayError> {
    let (from, head) = (i64::try_from(from).unwrap_or(i64::MAX), i64::try_from(to).unwrap_or(i64::MAX));
    let mut expected = from;
    let chunks = if head == 0 { 0 } else { (head - 1) / CHUNK_RECORDS + 1 };
    for chunk in from / CHUNK_RECORDS..chunks {
        let pager = retry(shared, "read journal", || {
            shared.session.execute_iter(shared.statements.read_chunk.clone(), (&shared.config.stream, chunk))
        })
        .await?;
        let mut rows = pager.rows_stream::<(i64, i64, Vec<u8>)>().map_err(|e| cql_error(shared, e))?;
        while let Some(row) = rows.next().await {
            let (seq, _epoch, record) = row.map_err(|e| cql_error(shared, e))?;
            // Rows come seq ascending, epoch descending: the first row of a
            // sequence number is the committed one; rows at or past the
            // head were never acknowledged.
            if seq < expected || seq >= head {
                continue;
            }
            if seq != expected {
                return Err(ReplayError::Store(StoreError::Damaged {
                    target: shared.target.clone(),
                    detail: format!("journal record {expected} is missing (found {seq} next)"),
                }));
            }
            visit(seq as u64, &record).map_err(|reason| ReplayError::Record { sequence: seq as u64, reason })?;
            expected += 1;
        }
    }
    if expected < head {
        return Err(ReplayError::Store(StoreError::Damaged {
            target: shared.target.clone(),
            detail: format!("the head says {head} records, {expected} were found"),
        }));
    }
    Ok((head - from.min(head)) as u64)
}

fn cql_error(shared: &Shared, error: impl std::fmt::Display) -> StoreError {
    StoreError::Cql { target: shared.target.clone(), detail: error.to_string() }
}

/// Runs a statement that is safe to send again, retrying failures with capped backoff.
async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    shared: &Shared,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Result<T, StoreError> {
    let mut backoff = Duration::from_millis(50);
    for n in 1.. {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if n < ATTEMPTS_MAX => {
                tracing::warn!(target = %shared.target, %error, attempt = n, "{what} failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(error) => return Err(cql_error(shared, format!("{what}: {error}"))),
        }
    }
    unreachable!()
}

async fn insert_row(shared: &Shared, seq: i64, epoch: i64, record: &[u8]) -> Result<(), StoreError> {
    let chunk = seq / CHUNK_RECORDS;
    retry(shared, "write journal row", || {
        shared
            .session
            .execute_unpaged(&shared.statements.insert_row, (&shared.config.stream, chunk, seq, epoch, record))
    })
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_defaults_and_options() {
        let c = CqlConfig::parse("cql://127.0.0.1:9042/ponte").unwrap();
        assert_eq!(c.nodes, ["127.0.0.1:9042"]);
        assert_eq!(
            (c.keyspace.as_str(), c.replication_factor, c.stream.as_str(), c.lease_ttl_s),
            ("ponte", 1, "main", 5)
        );
        let c =
            CqlConfig::parse("cql://a:1,b:2/Ks_1?replication_factor=3&node=n1&stream=shard_2&lease_ttl_s=9").unwrap();
        assert_eq!(c.nodes, ["a:1", "b:2"]);
        assert_eq!((c.keyspace.as_str(), c.replication_factor, c.node.as_str()), ("ks_1", 3, "n1"));
        assert_eq!((c.stream.as_str(), c.lease_ttl_s), ("shard_2", 9));
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        for (address, reason) in [
            ("http://a:1/ks", "cql://"),
            ("cql://a:1", "/KEYSPACE"),
            ("cql:///ks", "HOST:PORT"),
            ("cql://a/ks", "HOST:PORT"),
            ("cql://a:1/ks;drop", "keyspace"),
            ("cql://a:1/1ks", "keyspace"),
            ("cql://a:1/ks?replication_factor=0", "replication_factor"),
            ("cql://a:1/ks?color=red", "unknown option color"),
            ("cql://a:1/ks?stream=a-b", "bad stream"),
        ] {
            let error = CqlConfig::parse(address).unwrap_err().to_string();
            assert!(error.contains(reason), "{address}: {error}");
        }
    }
}
