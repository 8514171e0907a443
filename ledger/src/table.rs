//! The engine's two big collections, built so that neither ever stalls the
//! engine: a transfer table (a slab of transfers appended at the back and
//! evicted from the front, and a sharded index over it; a growing shard
//! rehashes 1/256 of the index, never all of it at once) and a deadline
//! queue with O(1) insertion and lazy removal.
//!
//! Every transfer gets a sequence number (its position) when recorded,
//! counted from the engine's first transfer and never reused. The table
//! holds two runs of positions, both only ever moving forward:
//! - `head..end`: full records (transfers in flight, and final ones for
//!   a short while, `EngineConfig::final_record_ms`);
//! - `seen_head..head`: what the duplicate window needs of a final
//!   transfer whose full record went to the archive ([`Seen`]: a 128-bit
//!   fingerprint of its id, 64 bits of its content digest and its outcome,
//!   40 bytes instead of ~160), until its id is too old to be submitted
//!   again.
//!
//! One index covers both. A whole chunk is freed once its run's head
//! passes it, so memory follows the window, not history.
//!
//! The table is laid out for the cache, TigerBeetle style. Transfers are
//! appended to a slab in arrival order, so recording one writes memory the
//! previous one just warmed, and a payee's answer (milliseconds later)
//! finds its transfer still cached. The index maps an id's hash to a slab
//! position with 8-byte entries in open addressing (linear probing): an
//! index of millions of transfers is a few hundred megabytes, not
//! gigabytes, so its pages stay in the TLB, and proving an id new — the
//! common case — reads one cache line of it.
//!
//! Index shards are deliberately uneven, routed as in
//! [`ponte_directory::sharded`]: with equal shards every shard reaches its
//! next power-of-two capacity at the same moment and they all rehash
//! together — one big stall, seen as multi-second throughput dips at 2, 4
//! and 8 million transfers. Uneven shares spanning one doubling spread the
//! resizes evenly over time.

use super::Transfer;
use crate::payments::Outcome;
use ponte_directory::sharded::{SHARDS, shard_bounds, shard_of};
use ponte_domain::{Account, Amount, EndToEndId, IdKind, ParticipantId, ReasonCode, TimestampMs, TransferState};
use std::collections::{HashMap, VecDeque};

/// Transfers per slab chunk (2^16 × 160 bytes ≈ 10 MB): the slab grows a
/// chunk at a time and never moves a transfer.
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Index shards grow past 7/10 full: linear probing then still finds an
/// id, or proves it absent, in one or two probes on average.
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 10;

/// foldhash: fast, and seeded per process so crafted ids cannot aim at one bucket.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Full records prefaulted at start at most (the rest of the capacity is
/// for [`Seen`] entries): final records leave for the archive within
/// `final_record_ms`, so few are held at once.
const FULL_PREFAULT_CHUNKS: usize = 16;

/// Freed chunks kept for reuse (full records, window entries), so a
/// steady state of arrival, archiving and forgetting allocates (and
/// page-faults) nothing.
const SPARE_CHUNKS: usize = 4;
const SPARE_SEEN_CHUNKS: usize = 1;

/// What the duplicate window keeps of a final transfer once its full
/// record is in the archive: enough to tell a resubmission (same id, same
/// content: the same answer) from a modified reuse of the id (DT02-style
/// refusal), and when the id may be forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    /// xxh3-128 of the id (fixed seed, so it survives a restart): two ids
    /// share one with odds of 2^-128.
    pub fingerprint: [u64; 2],
    /// 64 bits of the content digest the transfer was recorded with (a
    /// modified reuse of the id passes for the same content with odds of
    /// 2^-64, and then only gets the first submission's answer).
    pub digest: u64,
    /// When it settled (settled) or was recorded (rejected).
    pub at: TimestampMs,
    /// The minute (since the epoch) its id stops being submittable: from
    /// then on a resubmission is refused for its age without a look here.
    pub leaves_minute: u32,
    pub settled: bool,
    /// Why it was rejected.
    pub reason: Option<ReasonCode>,
}

const _: () = assert!(std::mem::size_of::<Seen>() == 40, "a window entry is 40 bytes");

impl Seen {
    /// What the window keeps of the final transfer `t`. Its id may be
    /// forgotten once the window passes the id's timestamp; an id refused
    /// for its timestamp (possibly far in the future) once its record is
    /// as old.
    pub fn of(t: &Transfer) -> Seen {
        debug_assert!(matches!(t.state, TransferState::Settled | TransferState::Rejected));
        let leaves_at = match t.reason {
            Some(ReasonCode::IdTimestampOutOfRange) => t.created_at,
            _ => t.id.created_at_ms().unwrap_or(i64::MIN),
        };
        let minute = leaves_at.div_euclid(60_000) + i64::from(leaves_at.rem_euclid(60_000) != 0);
        Seen {
            fingerprint: split(fingerprint_of(&t.id)),
            digest: t.digest as u64,
            at: t.settled_at.unwrap_or(t.created_at),
            leaves_minute: u32::try_from(minute.max(0)).unwrap_or(u32::MAX),
            settled: t.state == TransferState::Settled,
            reason: t.reason,
        }
    }

    /// Whether `digest` is the content this transfer was recorded with.
    pub fn same_content(&self, digest: u128) -> bool {
        self.digest == digest as u64
    }

    /// When the id may be forgotten (the start of `leaves_minute`).
    pub fn leaves_at(&self) -> TimestampMs {
        i64::from(self.leaves_minute) * 60_000
    }

    /// Bytes of [`Seen::to_bytes`].
    pub const BYTES: usize = 40;

    /// The entry as a fixed-size little-endian record (snapshots hold the
    /// window this way): fingerprint 16, digest 8, `at` 8, `leaves_minute`
    /// 4, reason number 2 (0: none), settled 1, a zero byte.
    pub fn to_bytes(self) -> [u8; Seen::BYTES] {
        let mut out = [0; Seen::BYTES];
        out[0..8].copy_from_slice(&self.fingerprint[0].to_le_bytes());
        out[8..16].copy_from_slice(&self.fingerprint[1].to_le_bytes());
        out[16..24].copy_from_slice(&self.digest.to_le_bytes());
        out[24..32].copy_from_slice(&self.at.to_le_bytes());
        out[32..36].copy_from_slice(&self.leaves_minute.to_le_bytes());
        out[36..38].copy_from_slice(&self.reason.map_or(0, ReasonCode::number).to_le_bytes());
        out[38] = u8::from(self.settled);
        out
    }

    /// Reads back [`Seen::to_bytes`]; what no entry could be is refused.
    pub fn from_bytes(bytes: &[u8; Seen::BYTES]) -> Result<Seen, String> {
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let number = u16::from_le_bytes([bytes[36], bytes[37]]);
        let reason = match number {
            0 => None,
            n => Some(ReasonCode::from_number(n).ok_or_else(|| format!("with unknown reason number {n}"))?),
        };
        let settled = match bytes[38] {
            0 => false,
            1 => true,
            other => return Err(format!("with settled byte {other}")),
        };
        if bytes[39] != 0 || settled == reason.is_some() {
            return Err("that is neither settled nor rejected with a reason".into());
        }
        Ok(Seen {
            fingerprint: [u64_at(0), u64_at(8)],
            digest: u64_at(16),
            at: u64_at(24) as i64,
            leaves_minute: u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes")),
            settled,
            reason,
        })
    }

    /// The answer a resubmission with the same content gets.
    pub fn outcome(&self) -> Outcome {
        match (self.settled, self.reason) {
            (true, _) => Outcome::Settled { at: self.at },
            (false, reason) => Outcome::Rejected { reason: reason.expect("rejected transfers carry a reason") },
        }
    }
}

fn split(value: u128) -> [u64; 2] {
    [value as u64, (value >> 64) as u64]
}

/// A transfer found by id: its full record, or what the window keeps of it.
#[derive(Debug, Clone, Copy)]
pub enum Held<'a> {
    Full(&'a Transfer),
    Seen(&'a Seen),
}

/// Transfers by end-to-end id: two slabs in arrival order (full records,
/// then [`Seen`] entries before them) and one index from the id's hash to
/// a position.
pub struct TransferTable {
    /// Full records of positions `head..end`.
    slab: Chunks<Transfer>,
    /// The first position with a full record (everything before it is in
    /// the archive).
    head: usize,
    /// The position the next transfer gets.
    end: usize,
    /// Window entries of positions `seen_head..head`.
    seen: Chunks<Seen>,
    /// The first position still indexed (everything before it was forgotten).
    seen_head: usize,
    index: Vec<IndexShard>,
}

/// Items by position in chunks of [`CHUNK`] that never move: appended at
/// the back, released from the front a whole chunk at a time (kept as
/// spares, up to a bound, for the chunks to come).
struct Chunks<T> {
    /// Chunks holding positions `first_chunk * CHUNK..`, in order.
    chunks: VecDeque<Vec<T>>,
    first_chunk: usize,
    spare: Vec<Vec<T>>,
    spare_max: usize,
}

impl<T: Clone> Chunks<T> {
    /// `count` chunks with their memory already touched (see [`prefaulted`]).
    fn prefaulted(count: usize, padding: T, spare_max: usize) -> Chunks<T> {
        let chunks = (0..count).map(|_| prefaulted(padding.clone())).collect();
        Chunks { chunks, first_chunk: 0, spare: Vec::new(), spare_max }
    }

    /// Empty, the next item pushed getting `position`: a chunk is filled
    /// from its start, so the first one is padded up to it.
    fn start_at(&mut self, position: usize, padding: T) {
        self.first_chunk = position >> CHUNK_BITS;
        let offset = position & (CHUNK - 1);
        if self.chunks.is_empty() && offset != 0 {
            self.chunks.push_back(Vec::with_capacity(CHUNK));
        }
        if let Some(first) = self.chunks.front_mut() {
            first.resize(offset, padding);
        }
    }

    fn get(&self, position: usize) -> &T {
        let (chunk, index) = locate(position);
        &self.chunks[chunk - self.first_chunk][index]
    }

    fn get_mut(&mut self, position: usize) -> &mut T {
        let (chunk, index) = locate(position);
        &mut self.chunks[chunk - self.first_chunk][index]
    }

    /// Appends the item of `position`, the one after the last pushed.
    fn push(&mut self, position: usize, item: T) {
        let (chunk, _) = locate(position);
        if chunk - self.first_chunk == self.chunks.len() {
            let fresh = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK));
            self.chunks.push_back(fresh);
        }
        self.chunks[chunk - self.first_chunk].push(item);
    }

    /// Releases the chunks holding only positions before `head`.
    fn release_before(&mut self, head: usize) {
        while locate(head).0 > self.first_chunk {
            let mut freed = self.chunks.pop_front().expect("a chunk before head");
            freed.clear();
            if self.spare.len() < self.spare_max {
                self.spare.push(freed);
            }
            self.first_chunk += 1;
        }
    }

    /// Chunks held (not counting spares).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.chunks.len()
    }
}

/// Positions are stored in the index modulo this, plus one (0 means an
/// empty slot): the table holds fewer than this many at once, so the full
/// position is the one of that residue at or after `head`.
const RESIDUES: u64 = u32::MAX as u64;

/// One shard of the index: open addressing, linear probing, deletion by
/// backward shift (no tombstones). An entry is `(position % RESIDUES + 1)
/// << 32 | tag` with `tag` the low 32 bits of the id's hash, 0 meaning
/// empty; the tag both places the entry and filters out all but one in 4
/// billion of the other ids met on the way, so the slab is read only for
/// the match.
#[derive(Default)]
struct IndexShard {
    slots: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for TransferTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferTable").field("head", &self.head).field("end", &self.end).finish_non_exhaustive()
    }
}

/// The id's fingerprint: xxh3-128 of the whole id with a fixed seed (it is
/// kept in snapshots).
pub fn fingerprint_of(id: &EndToEndId) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// The index hash of an id, from its fingerprint: xxh3 of the fingerprint
/// (so a patterned tail, sequential counters, still spreads), seeded per
/// process so that crafted ids cannot aim at one slot. An entry whose
/// full record left memory is re-indexed from its fingerprint alone.
fn hash_of_fingerprint(fingerprint: u128) -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::hash::RandomState::new().hash_one(0x5eed_u64)
    });
    xxhash_rust::xxh3::xxh3_64_with_seed(&fingerprint.to_le_bytes(), seed)
}

fn hash_of(id: &EndToEndId) -> u64 {
    hash_of_fingerprint(fingerprint_of(id))
}

/// The tag: the hash's low 32 bits, which the shard choice left alone.
/// Never 0, so that 0 can mean an empty slot.
fn tag_of(hash: u64) -> u32 {
    (hash as u32).max(1)
}

/// The position an entry names, given the table's `head`.
fn position_of(entry: u64, head: usize) -> usize {
    let residue = (entry >> 32) - 1;
    let head_residue = head as u64 % RESIDUES;
    head + ((residue + RESIDUES - head_residue) % RESIDUES) as usize
}

fn entry_of(position: usize, tag: u32) -> u64 {
    (position as u64 % RESIDUES + 1) << 32 | u64::from(tag)
}

/// A slab position as (global chunk number, index in the chunk).
fn locate(position: usize) -> (usize, usize) {
    (position >> CHUNK_BITS, position & (CHUNK - 1))
}

impl IndexShard {
    fn with_room(room: usize) -> IndexShard {
        let slots = if room == 0 { 0 } else { (room * LOAD_DEN).div_ceil(LOAD_NUM).next_power_of_two() };
        // vec! of zeros is calloc'd: written once here so the kernel maps
        // the pages now rather than on the hot path.
        let mut shard = IndexShard { slots: vec![0; slots], len: 0 };
        shard.slots.iter_mut().for_each(|slot| *slot = std::hint::black_box(0));
        shard
    }

    fn room(&self) -> usize {
        self.slots.len() / LOAD_DEN * LOAD_NUM
    }

    /// Where probing for `tag` starts (the shard must have slots).
    fn home(&self, tag: u32) -> usize {
        tag as usize & (self.slots.len() - 1)
    }

    /// The slot holding `tag`'s entry for which `is_match` holds, or the
    /// empty slot where it would go.
    fn probe(&self, tag: u32, mut is_match: impl FnMut(u64) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut at = self.home(tag);
        loop {
            let entry = self.slots[at];
            if entry == 0 {
                return Err(at);
            }
            if entry as u32 == tag && is_match(entry) {
                return Ok(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// Empties the slot at `at`, shifting back the entries after it that
    /// probing would otherwise no longer reach (linear probing's deletion).
    fn remove_at(&mut self, mut at: usize) {
        let mask = self.slots.len() - 1;
        let mut next = (at + 1) & mask;
        loop {
            let entry = self.slots[next];
            if entry == 0 {
                break;
            }
            let home = self.home(entry as u32);
            // Move `next` back into the hole unless its home lies
            // (cyclically) after the hole and at or before `next`.
            let stays = if at <= next { at < home && home <= next } else { at < home || home <= next };
            if !stays {
                self.slots[at] = entry;
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[at] = 0;
        self.len -= 1;
    }

    fn grow(&mut self) {
        let bigger = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![0; bigger]);
        for entry in old.into_iter().filter(|&e| e != 0) {
            let Err(at) = self.probe(entry as u32, |_| false) else { unreachable!("no match asked for") };
            self.slots[at] = entry;
        }
    }
}

impl TransferTable {
    /// A table built for `capacity` transfers in the duplicate window: no
    /// index shard resizes (and no rehash pauses) until it holds that many,
    /// and its memory (index, window entries, the first full-record
    /// chunks) already touched, so no insert waits on the kernel zeroing a
    /// fresh page.
    pub fn with_capacity(capacity: usize) -> TransferTable {
        let bounds = shard_bounds();
        let index = (0..SHARDS)
            .map(|i| {
                let low = if i == 0 { 0 } else { bounds[i - 1] };
                let share = (bounds[i] - low) as f64 / u64::MAX as f64;
                // Ids land in shards at random: room for the expected
                // share plus six standard deviations.
                let expected = capacity as f64 * share;
                let room = if capacity == 0 { 0 } else { (expected + 6.0 * expected.sqrt() + 16.0).ceil() as usize };
                IndexShard::with_room(room)
            })
            .collect();
        let chunks = capacity.div_ceil(CHUNK);
        TransferTable {
            slab: Chunks::prefaulted(chunks.min(FULL_PREFAULT_CHUNKS), padding(), SPARE_CHUNKS),
            head: 0,
            end: 0,
            seen: Chunks::prefaulted(chunks, seen_padding(), SPARE_SEEN_CHUNKS),
            seen_head: 0,
            index,
        }
    }

    /// A table restored from a snapshot: the window entries of positions
    /// `seen_head..`, as [`Seen::to_bytes`] records back to back in
    /// `window`, then empty, the next transfer getting the position after
    /// them. The index is built for `capacity` or the entries and a
    /// quarter more, whichever is more, so neither the restore nor the
    /// journal replayed after it resizes it; each block of entries has
    /// its index lines prefetched before it is inserted, so a restore of
    /// millions is not one cache miss after another.
    pub fn restored(capacity: usize, seen_head: usize, window: &[u8]) -> Result<TransferTable, String> {
        const BLOCK: usize = 32;
        let count = window.len() / Seen::BYTES;
        let mut table = TransferTable::with_capacity(capacity.max(count + count / 4));
        table.seen_head = seen_head;
        table.seen.start_at(seen_head, seen_padding());
        table.head = seen_head;
        let mut block = [(seen_padding(), 0u64); BLOCK];
        for records in window.chunks(Seen::BYTES * BLOCK) {
            let entries = &mut block[..records.len() / Seen::BYTES];
            for (i, (entry, record)) in entries.iter_mut().zip(records.chunks_exact(Seen::BYTES)).enumerate() {
                let position = table.head + i;
                let seen = Seen::from_bytes(record.try_into().expect("a whole record"))
                    .map_err(|e| format!("{position} {e}"))?;
                let hash = hash_of_fingerprint(join(seen.fingerprint));
                let shard = &table.index[shard_of(hash)];
                if !shard.slots.is_empty() {
                    prefetch(&shard.slots[shard.home(tag_of(hash))]);
                }
                *entry = (seen, hash);
            }
            for &(seen, hash) in entries.iter() {
                let position = table.head;
                table.seen.push(position, seen);
                table.room_for_one(hash);
                let Err(at) = table.index[shard_of(hash)].probe(tag_of(hash), |_| false) else {
                    unreachable!("no match asked for")
                };
                table.fill(hash, at, position);
                table.head += 1;
            }
        }
        table.end = table.head;
        table.slab.start_at(table.head, padding());
        Ok(table)
    }

    /// An empty table whose first transfer gets position `head`.
    #[cfg(test)]
    pub fn starting_at(capacity: usize, head: usize) -> TransferTable {
        TransferTable::restored(capacity, head, &[]).expect("no entries")
    }

    /// The transfer at slab `position` (recording order); the position
    /// must be held in full (`head <= position < end`).
    pub fn at(&self, position: usize) -> &Transfer {
        debug_assert!(self.holds(position), "position {position} not held");
        self.slab.get(position)
    }

    fn seen_at(&self, position: usize) -> &Seen {
        debug_assert!((self.seen_head..self.head).contains(&position), "position {position} not in the window");
        self.seen.get(position)
    }

    /// Whether `position`'s full record is in the table.
    pub fn holds(&self, position: usize) -> bool {
        (self.head..self.end).contains(&position)
    }

    /// Whether the entry at `position` is `id`'s (`fingerprint` is the id's).
    fn is_of(&self, position: usize, id: &EndToEndId, fingerprint: u128) -> bool {
        if position >= self.head {
            self.at(position).id == *id
        } else {
            join(self.seen_at(position).fingerprint) == fingerprint
        }
    }

    /// The position of `id`, full record or window entry.
    fn find_any(&self, id: &EndToEndId) -> Option<usize> {
        let fingerprint = fingerprint_of(id);
        let hash = hash_of_fingerprint(fingerprint);
        let shard = &self.index[shard_of(hash)];
        if shard.slots.is_empty() {
            return None;
        }
        let seen_head = self.seen_head;
        let at = shard.probe(tag_of(hash), |e| self.is_of(position_of(e, seen_head), id, fingerprint)).ok()?;
        Some(position_of(shard.slots[at], seen_head))
    }

    /// The slab position of `id`'s full record.
    pub fn find(&self, id: &EndToEndId) -> Option<usize> {
        self.find_any(id).filter(|&position| position >= self.head)
    }

    /// `id`'s full record, or what the window keeps of it.
    pub fn lookup(&self, id: &EndToEndId) -> Option<Held<'_>> {
        let position = self.find_any(id)?;
        Some(if position >= self.head { Held::Full(self.at(position)) } else { Held::Seen(self.seen_at(position)) })
    }

    /// Whether `id` was recorded and is still in the window.
    pub fn contains(&self, id: &EndToEndId) -> bool {
        self.find_any(id).is_some()
    }

    /// Asks the CPU to start loading the index line where `id` would be
    /// found, without waiting for it: a batch calls this a few commands
    /// ahead, so that the lookup — a cache miss in a table of millions —
    /// overlaps the commands before it. Only a hint: nothing changes.
    pub fn prefetch(&self, id: &EndToEndId) {
        let hash = hash_of(id);
        let shard = &self.index[shard_of(hash)];
        if !shard.slots.is_empty() {
            prefetch(&shard.slots[shard.home(tag_of(hash))]);
        }
    }

    /// `id`'s full record (`None` also when only its window entry is held).
    pub fn get(&self, id: &EndToEndId) -> Option<&Transfer> {
        self.find(id).map(|position| self.at(position))
    }

    pub fn get_mut(&mut self, id: &EndToEndId) -> Option<&mut Transfer> {
        self.find(id).map(|position| self.at_mut(position))
    }

    pub fn at_mut(&mut self, position: usize) -> &mut Transfer {
        debug_assert!(self.holds(position), "position {position} not held");
        self.slab.get_mut(position)
    }

    /// Makes room in `hash`'s shard for one more entry.
    fn room_for_one(&mut self, hash: u64) {
        let shard = &mut self.index[shard_of(hash)];
        if shard.len + 1 > shard.room() {
            shard.grow();
        }
    }

    /// Puts `position` in the empty slot `at` of `hash`'s shard.
    fn fill(&mut self, hash: u64, at: usize, position: usize) {
        assert!(((position - self.seen_head) as u64) < RESIDUES - 1, "fewer than 4 billion transfers held at once");
        let shard = &mut self.index[shard_of(hash)];
        shard.slots[at] = entry_of(position, tag_of(hash));
        shard.len += 1;
    }

    /// Inserts a new transfer and returns its slab position; `None` if the
    /// id was already there (nothing changes then).
    pub fn insert(&mut self, transfer: Transfer) -> Option<usize> {
        let fingerprint = fingerprint_of(&transfer.id);
        let hash = hash_of_fingerprint(fingerprint);
        let (position, seen_head) = (self.end, self.seen_head);
        self.room_for_one(hash);
        // One probe: it finds the id, or the empty slot it goes in.
        let is_of = |e| self.is_of(position_of(e, seen_head), &transfer.id, fingerprint);
        let Err(at) = self.index[shard_of(hash)].probe(tag_of(hash), is_of) else { return None };
        self.fill(hash, at, position);
        self.slab.push(position, transfer);
        self.end += 1;
        Some(position)
    }

    /// Full records held.
    pub fn len(&self) -> usize {
        self.end - self.head
    }

    /// Transfers in the window: full records and window entries.
    pub fn window_len(&self) -> usize {
        self.end - self.seen_head
    }

    /// The first position held in full: how many transfers went to the archive.
    pub fn head(&self) -> usize {
        self.head
    }

    /// The first position in the window: how many ids were forgotten.
    pub fn seen_head(&self) -> usize {
        self.seen_head
    }

    /// The position the next transfer gets: how many were ever recorded.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Every full record held with its position, in the order they were recorded.
    pub fn values(&self) -> impl Iterator<Item = (usize, &Transfer)> {
        (self.head..self.end).map(|position| (position, self.at(position)))
    }

    /// Every window entry, in the order they were recorded.
    pub fn seen_values(&self) -> impl Iterator<Item = &Seen> {
        (self.seen_head..self.head).map(|position| self.seen_at(position))
    }

    /// The full record at `head` (the oldest) leaves for the archive: the
    /// window keeps `entry` for it, under the same index entry.
    pub fn demote_head(&mut self, entry: Seen) {
        assert!(self.head < self.end, "nothing to demote");
        debug_assert_eq!(join(entry.fingerprint), fingerprint_of(&self.at(self.head).id));
        self.seen.push(self.head, entry);
        self.head += 1;
        self.slab.release_before(self.head);
    }

    /// Forgets the oldest window entry: its id leaves the index, and its
    /// chunk is freed once every entry in it is forgotten (tests; the
    /// engine forgets runs of them, [`TransferTable::forget_through`]).
    #[cfg(test)]
    pub fn forget_seen_head(&mut self) {
        assert!(self.seen_head < self.head, "nothing to forget");
        let hash = hash_of_fingerprint(join(self.seen_at(self.seen_head).fingerprint));
        self.forget_hashed(hash);
    }

    /// Forgets the window entries before `through`, as
    /// [`TransferTable::forget_seen_head`] one by one would, with the index
    /// lines of each block of them prefetched first: removing an id from an
    /// index of millions is a cache miss, and these overlap.
    pub fn forget_through(&mut self, through: usize) {
        const BLOCK: usize = 32;
        assert!(through <= self.head, "forgetting past the window");
        let mut hashes = [0u64; BLOCK];
        while self.seen_head < through {
            let count = (through - self.seen_head).min(BLOCK);
            for (i, hash) in hashes[..count].iter_mut().enumerate() {
                *hash = hash_of_fingerprint(join(self.seen_at(self.seen_head + i).fingerprint));
                let shard = &self.index[shard_of(*hash)];
                prefetch(&shard.slots[shard.home(tag_of(*hash))]);
            }
            for &hash in &hashes[..count] {
                self.forget_hashed(hash);
            }
        }
    }

    /// Forgets the entry at `seen_head`, whose id's hash is `hash`.
    fn forget_hashed(&mut self, hash: u64) {
        let (seen_head, tag) = (self.seen_head, tag_of(hash));
        let shard = &self.index[shard_of(hash)];
        let at = shard.probe(tag, |e| position_of(e, seen_head) == seen_head).expect("a window entry is indexed");
        self.index[shard_of(hash)].remove_at(at);
        self.seen_head += 1;
        self.seen.release_before(self.seen_head);
    }

    /// Demotes the oldest full record and forgets it at once (tests of the
    /// index: what an engine does over a whole duplicate window).
    #[cfg(test)]
    pub fn evict_head(&mut self) {
        let t = self.at(self.head).clone();
        let t = Transfer { state: TransferState::Settled, settled_at: Some(t.created_at), ..t };
        self.demote_head(Seen::of(&t));
        self.forget_seen_head();
    }
}

fn join(halves: [u64; 2]) -> u128 {
    u128::from(halves[0]) | u128::from(halves[1]) << 64
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
fn prefetch<T>(line: &T) {
    safe_arch::prefetch_t0(line);
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
fn prefetch<T>(_line: &T) {}

/// A chunk with its memory written once (with placeholder items,
/// removed again), so the kernel maps and zeroes its pages now rather than
/// on the hot path. Safe code cannot touch a vector's spare capacity any
/// other way.
fn prefaulted<T: Clone>(padding: T) -> Vec<T> {
    let mut chunk = vec![padding; CHUNK];
    std::hint::black_box(&mut chunk);
    chunk.clear();
    chunk
}

/// A placeholder window entry (never indexed).
fn seen_padding() -> Seen {
    Seen { fingerprint: [0; 2], digest: 0, at: 0, leaves_minute: 0, settled: false, reason: None }
}

/// A placeholder transfer (never indexed).
fn padding() -> Transfer {
    Transfer {
        id: EndToEndId::from_parts(IdKind::Payment, ParticipantId::new(1).expect("valid code"), 0, b"PLACEHOLDER"),
        payer: Account::unresolved(),
        payee: Account::unresolved(),
        amount: Amount::ZERO,
        state: TransferState::Received,
        reason: None,
        created_at: 0,
        settled_at: None,
        deadline: 0,
        digest: 0,
        returned: Amount::ZERO,
        cycle: 0,
    }
}

#[cfg(test)]
mod tests;
