//! Snapshots: the engine's whole durable state as one checksummed file, so
//! that a restart loads the newest snapshot and replays only the journal
//! records written after it.
//!
//! Layout (all integers little-endian):
//! ```text
//! magic "PONTESNP" | format u32 | journal_records u64 | body_len u64 | body (postcard)
//!   | window entries (40 bytes each, [`Seen::to_bytes`]) | xxh3-128 of all before it
//! ```
//! `journal_records` is how many journal records the state includes: the
//! engine restored from the snapshot, with records `journal_records..`
//! applied, is the engine that replayed the whole journal.
//!
//! The duplicate window's entries (most of a snapshot: ~10 M of them for a
//! busy minute-scale window, 24 h of a country's payments in production)
//! are fixed-size records after the body rather than postcard: writing and
//! reading them is a copy, and a restart restores them straight into the
//! table's chunks, building the index as it goes. Their count is implied
//! by the body (`head - seen_head`) and checked against the bytes.
//!
//! The body is written in a fixed order (maps sorted, transfers in arrival
//! order), so two engines in the same state write the same bytes: the
//! tests compare a live engine, its replay and its restored snapshot that
//! way. What is not durable (who is online, lookup buckets, answer
//! counters, the disbursement driver's offline list) is not in it, as it
//! is not in the journal.

use crate::archive::LateReturn;
use crate::cycles::Cycle;
use crate::disbursement::{Disbursements, snapshot::Image as DisbursementImage};
use crate::table::Seen;
use crate::{DirectoryState, Engine, EngineConfig, ParticipantState, Transfer};
use ponte_directory::claims::Claim;
use ponte_directory::registry::Entry;
use ponte_domain::EndToEndId;

const MAGIC: &[u8; 8] = b"PONTESNP";
/// Bumped whenever the body's layout changes; older snapshots are then
/// refused (the journal they cover is replayed instead, or the previous
/// snapshot used).
pub const SNAPSHOT_FORMAT: u32 = 5;
const HEADER_BYTES: usize = 8 + 4 + 8;
/// The body's length follows the header.
const BODY_AT: usize = HEADER_BYTES + 8;
const CHECKSUM_BYTES: usize = 16;

/// Why a snapshot cannot be used. The caller falls back to an older one
/// or to the whole journal; never to a wrong state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Ponte snapshot (bad magic or shorter than its header)")]
    NotASnapshot,
    #[error("snapshot format {found}; this build reads format {SNAPSHOT_FORMAT}")]
    Format { found: u32 },
    #[error("snapshot checksum mismatch: the file is torn or damaged")]
    Checksum,
    #[error("snapshot body cannot be decoded: {0}")]
    Body(String),
    #[error("restored state breaks an invariant: {0}")]
    Invariant(String),
}

/// What a snapshot file says about itself before its body is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub format: u32,
    pub journal_records: u64,
}

#[derive(serde::Serialize)]
struct BodyRef<'a> {
    current_cycle: u64,
    participants: Vec<&'a ParticipantState>,
    transfers: Transfers<'a>,
    originals: Vec<(EndToEndId, EndToEndId)>,
    entries: Vec<&'a Entry>,
    claims: Vec<&'a Claim>,
    cycles: Vec<&'a Cycle>,
    disbursements: DisbursementImage,
    /// Position of the first transfer held in full (those before it are archived).
    head: u64,
    archive_ops: u64,
    late_returns: Vec<LateReturn>,
    /// Position of the first duplicate-window entry (the entries of
    /// `seen_head..head` follow the body).
    seen_head: u64,
    /// By original id.
    recalls: Vec<&'a crate::Recall>,
}

/// The same fields, owned, as read back.
#[derive(serde::Deserialize)]
struct Body {
    current_cycle: u64,
    participants: Vec<ParticipantState>,
    transfers: Vec<Transfer>,
    originals: Vec<(EndToEndId, EndToEndId)>,
    entries: Vec<Entry>,
    claims: Vec<Claim>,
    cycles: Vec<Cycle>,
    disbursements: DisbursementImage,
    head: u64,
    archive_ops: u64,
    late_returns: Vec<LateReturn>,
    seen_head: u64,
    recalls: Vec<crate::Recall>,
}

/// Transfers in arrival order, written straight from the table.
struct Transfers<'a>(&'a Engine);

impl serde::Serialize for Transfers<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // The length first (postcard needs it), then each transfer in place.
        let mut seq = serializer.serialize_seq(Some(self.0.transfers.len()))?;
        for (_, transfer) in self.0.transfers.values() {
            seq.serialize_element(transfer)?;
        }
        seq.end()
    }
}

impl Engine {
    /// The engine's durable state as a snapshot covering the first
    /// `journal_records` journal records (the caller knows how many it
    /// applied).
    pub fn snapshot(&self, journal_records: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.snapshot_into(journal_records, &mut out);
        out
    }

    /// [`Engine::snapshot`] into `out` (cleared first; its capacity is
    /// reused, so a thread writing snapshots at intervals allocates once).
    pub fn snapshot_into(&self, journal_records: u64, out: &mut Vec<u8>) {
        let mut participants: Vec<_> = self.participants.values().collect();
        participants.sort_unstable_by_key(|p| p.id);
        let mut originals: Vec<_> = self.originals.iter().map(|(r, o)| (*r, *o)).collect();
        originals.sort_unstable();
        let mut entries: Vec<_> = self.directory.registry.entries().collect();
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let body = BodyRef {
            current_cycle: self.current_cycle,
            participants,
            transfers: Transfers(self),
            originals,
            entries,
            claims: self.directory.claims.all().collect(),
            cycles: self.cycles.values().collect(),
            disbursements: self.disbursements.image(),
            head: self.transfers.head() as u64,
            archive_ops: self.archive_ops,
            late_returns: self.late_returns.sorted(),
            seen_head: self.transfers.seen_head() as u64,
            recalls: self.recalls.values().collect(),
        };
        let window = self.transfers.window_len() - self.transfers.len();
        out.clear();
        out.reserve(BODY_AT + 160 * self.transfers.len() + Seen::BYTES * window + 4096);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        out.extend_from_slice(&journal_records.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        *out = postcard::to_extend(&body, std::mem::take(out)).expect("encoding to a Vec cannot fail");
        let body_len = (out.len() - BODY_AT) as u64;
        out[HEADER_BYTES..BODY_AT].copy_from_slice(&body_len.to_le_bytes());
        for seen in self.transfers.seen_values() {
            out.extend_from_slice(&seen.to_bytes());
        }
        let checksum = xxhash_rust::xxh3::xxh3_128(out);
        out.extend_from_slice(&checksum.to_le_bytes());
    }

    /// Rebuilds an engine from a snapshot, checking its checksum and the
    /// ledger's invariants. `config` is the switch's current configuration
    /// (not part of the state).
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<(Engine, SnapshotHeader), SnapshotError> {
        let header = snapshot_header(bytes)?;
        let (content, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        let checksum = u128::from_le_bytes(checksum.try_into().expect("16 bytes"));
        if xxhash_rust::xxh3::xxh3_128(content) != checksum {
            return Err(SnapshotError::Checksum);
        }
        let body_len = u64::from_le_bytes(content[HEADER_BYTES..BODY_AT].try_into().expect("8 bytes"));
        let window_at = usize::try_from(body_len)
            .ok()
            .and_then(|len| BODY_AT.checked_add(len))
            .filter(|&end| end <= content.len())
            .ok_or_else(|| SnapshotError::Body(format!("a body of {body_len} bytes runs past the file")))?;
        let body: Body =
            postcard::from_bytes(&content[BODY_AT..window_at]).map_err(|e| SnapshotError::Body(e.to_string()))?;
        let window = &content[window_at..];
        let entries = body.head.checked_sub(body.seen_head);
        if entries.and_then(|n| n.checked_mul(Seen::BYTES as u64)) != Some(window.len() as u64) {
            let (seen_head, head, bytes) = (body.seen_head, body.head, window.len());
            return Err(SnapshotError::Body(format!(
                "window entries from {seen_head} to {head} do not fill the {bytes} bytes after the body"
            )));
        }
        let engine = Engine::from_body(config, body, window)?;
        engine.check_invariants().map_err(SnapshotError::Invariant)?;
        Ok((engine, header))
    }

    /// The engine of a decoded body and its window entries (`window`:
    /// whole [`Seen::BYTES`] records, checked by the caller).
    fn from_body(config: EngineConfig, body: Body, window: &[u8]) -> Result<Engine, SnapshotError> {
        // The table is built once, at its capacity, numbered from `head`.
        let capacity = usize::try_from(config.transfers_capacity).unwrap_or(usize::MAX);
        let mut engine = Engine::new(EngineConfig { transfers_capacity: 0, ..config.clone() });
        engine.config = config;
        let seen_head = usize::try_from(body.seen_head).map_err(|_| SnapshotError::Body("a position".into()))?;
        engine.transfers = crate::table::TransferTable::restored(capacity, seen_head, window)
            .map_err(|detail| SnapshotError::Body(format!("window entry {detail}")))?;
        engine.archive_ops = body.archive_ops;
        engine.late_returns = crate::archive::LateReturns::restore(body.late_returns);
        engine.current_cycle = body.current_cycle;
        for participant in body.participants {
            engine.participants.insert(participant.id, participant);
        }
        for transfer in body.transfers {
            let reserved = (transfer.state == ponte_domain::TransferState::Reserved).then_some(transfer.deadline);
            let Some(position) = engine.transfers.insert(transfer) else {
                return Err(SnapshotError::Body("a transfer's id is held twice".into()));
            };
            if let Some(deadline) = reserved {
                engine.deadlines.push(deadline, position);
            }
        }
        engine.originals.extend(body.originals);
        let directory: &mut DirectoryState = &mut engine.directory;
        for entry in body.entries {
            directory.registry.insert(entry);
        }
        for claim in body.claims {
            if !claim.status.is_final() {
                engine.claim_deadline = engine.claim_deadline.min(claim.resolve_by);
            }
            directory.claims.store(claim);
        }
        engine.cycles = body.cycles.into_iter().map(|c| (c.header.id, c)).collect();
        engine.disbursements = Disbursements::from_image(body.disbursements);
        engine.recalls = body.recalls.into_iter().map(|r| (r.original, r)).collect();
        Ok(engine)
    }
}

/// Reads a snapshot's header without decoding its body (to pick the newest
/// usable file).
pub fn snapshot_header(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES || &bytes[..8] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format != SNAPSHOT_FORMAT {
        return Err(SnapshotError::Format { found: format });
    }
    let journal_records = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    Ok(SnapshotHeader { format, journal_records })
}
