//! The engine's two big collections, built so that neither ever stalls the
//! engine: a transfer table (a slab of transfers appended at the back and
//! evicted from the front, and a sharded index over it; a growing shard
//! rehashes 1/256 of the index, never all of it at once) and a deadline
//! queue with O(1) insertion and lazy removal.
//!
//! Every transfer gets a sequence number (its position) when recorded,
//! counted from the engine's first transfer and never reused. The table
//! holds the positions `head..end`: eviction (of transfers the archive
//! took over) only ever moves `head` forward, a whole slab chunk is freed
//! once `head` passes it, so memory follows the hot window, not history.
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
use ponte_directory::sharded::{SHARDS, shard_bounds, shard_of};
use ponte_domain::{Account, Amount, EndToEndId, IdKind, ParticipantId, TimestampMs, TransferState};
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

/// Transfers by end-to-end id: a slab in arrival order and an index from
/// the id's hash to a slab position.
pub struct TransferTable {
    /// Chunks holding positions `first_chunk * CHUNK..`, in order.
    slab: VecDeque<Vec<Transfer>>,
    first_chunk: usize,
    /// The first position still held (everything before it was evicted).
    head: usize,
    /// The position the next transfer gets.
    end: usize,
    index: Vec<IndexShard>,
    /// Freed chunks kept for reuse (at most one), so a steady state of
    /// eviction and arrival allocates nothing.
    spare: Option<Vec<Transfer>>,
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

/// The id's hash: xxh3 of the whole id, so a patterned tail (sequential
/// counters) still spreads, seeded per process so that crafted ids cannot
/// aim at one slot.
fn hash_of(id: &EndToEndId) -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::hash::RandomState::new().hash_one(0x5eed_u64)
    });
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), seed)
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
    /// A table built for `capacity` transfers: no index shard resizes (and
    /// no rehash pauses) until it holds that many, and its memory (index
    /// and slab) already touched, so no insert waits on the kernel zeroing
    /// a fresh page.
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
        let slab = (0..capacity.div_ceil(CHUNK)).map(|_| prefaulted_chunk()).collect();
        TransferTable { slab, first_chunk: 0, head: 0, end: 0, index, spare: None }
    }

    /// An empty table whose first transfer gets position `head` (a table
    /// restored from a snapshot keeps its positions).
    pub fn starting_at(capacity: usize, head: usize) -> TransferTable {
        let mut table = TransferTable::with_capacity(capacity);
        table.head = head;
        table.end = head;
        table.first_chunk = head >> CHUNK_BITS;
        // A chunk is filled from its start: pad the first one up to `head`.
        if let Some(first) = table.slab.front_mut() {
            first.resize(head & (CHUNK - 1), padding());
        } else if head & (CHUNK - 1) != 0 {
            table.slab.push_back(Vec::with_capacity(CHUNK));
            table.slab[0].resize(head & (CHUNK - 1), padding());
        }
        table
    }

    /// The transfer at slab `position` (recording order); the position
    /// must be held (`head <= position < end`).
    pub fn at(&self, position: usize) -> &Transfer {
        debug_assert!(self.holds(position), "position {position} not held");
        let (chunk, index) = locate(position);
        &self.slab[chunk - self.first_chunk][index]
    }

    /// Whether `position` is in the table (not evicted, already recorded).
    pub fn holds(&self, position: usize) -> bool {
        (self.head..self.end).contains(&position)
    }

    /// The slab position of `id`.
    pub fn find(&self, id: &EndToEndId) -> Option<usize> {
        let hash = hash_of(id);
        let shard = &self.index[shard_of(hash)];
        if shard.slots.is_empty() {
            return None;
        }
        let head = self.head;
        let at = shard.probe(tag_of(hash), |entry| self.at(position_of(entry, head)).id == *id).ok()?;
        Some(position_of(shard.slots[at], head))
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

    pub fn get(&self, id: &EndToEndId) -> Option<&Transfer> {
        self.find(id).map(|position| self.at(position))
    }

    pub fn get_mut(&mut self, id: &EndToEndId) -> Option<&mut Transfer> {
        self.find(id).map(|position| self.at_mut(position))
    }

    pub fn at_mut(&mut self, position: usize) -> &mut Transfer {
        debug_assert!(self.holds(position), "position {position} not held");
        let (chunk, index) = locate(position);
        &mut self.slab[chunk - self.first_chunk][index]
    }

    /// Inserts a new transfer and returns its slab position; `None` if the
    /// id was already there (nothing changes then).
    pub fn insert(&mut self, transfer: Transfer) -> Option<usize> {
        let hash = hash_of(&transfer.id);
        let tag = tag_of(hash);
        let shard_index = shard_of(hash);
        let shard = &mut self.index[shard_index];
        if shard.len + 1 > shard.room() {
            shard.grow();
        }
        let head = self.head;
        let at = match self.index[shard_index].probe(tag, |e| self.at(position_of(e, head)).id == transfer.id) {
            Ok(_) => return None,
            Err(at) => at,
        };
        assert!(((self.end - self.head) as u64) < RESIDUES - 1, "fewer than 4 billion transfers held at once");
        let position = self.end;
        let (chunk, _) = locate(position);
        if chunk - self.first_chunk == self.slab.len() {
            let fresh = self.spare.take().unwrap_or_else(|| Vec::with_capacity(CHUNK));
            self.slab.push_back(fresh);
        }
        self.slab[chunk - self.first_chunk].push(transfer);
        let shard = &mut self.index[shard_index];
        shard.slots[at] = entry_of(position, tag);
        shard.len += 1;
        self.end += 1;
        Some(position)
    }

    /// Transfers held.
    pub fn len(&self) -> usize {
        self.end - self.head
    }

    /// The first position held: how many transfers were evicted.
    pub fn head(&self) -> usize {
        self.head
    }

    /// The position the next transfer gets: how many were ever recorded.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Every transfer held with its position, in the order they were recorded.
    pub fn values(&self) -> impl Iterator<Item = (usize, &Transfer)> {
        (self.head..self.end).map(|position| (position, self.at(position)))
    }

    /// Evicts the transfer at `head` (the oldest held): its id leaves the
    /// index, and its chunk is freed once every transfer in it is evicted.
    pub fn evict_head(&mut self) {
        assert!(self.head < self.end, "nothing to evict");
        let id = self.at(self.head).id;
        let hash = hash_of(&id);
        let (head, tag) = (self.head, tag_of(hash));
        let shard = &self.index[shard_of(hash)];
        let at = shard.probe(tag, |e| position_of(e, head) == head).expect("a held transfer is indexed");
        self.index[shard_of(hash)].remove_at(at);
        self.head += 1;
        if locate(self.head).0 > self.first_chunk {
            let mut freed = self.slab.pop_front().expect("the evicted chunk");
            freed.clear();
            self.spare.get_or_insert(freed);
            self.first_chunk += 1;
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
fn prefetch<T>(line: &T) {
    safe_arch::prefetch_t0(line);
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
fn prefetch<T>(_line: &T) {}

/// A slab chunk with its memory written once (with placeholder transfers,
/// removed again), so the kernel maps and zeroes its pages now rather than
/// on the hot path. Safe code cannot touch a vector's spare capacity any
/// other way.
fn prefaulted_chunk() -> Vec<Transfer> {
    let mut chunk = vec![padding(); CHUNK];
    std::hint::black_box(&mut chunk);
    chunk.clear();
    chunk
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

/// Payee deadlines in due order, each with its transfer's slab position.
///
/// Settling or rejecting a transfer leaves its queue entry in place: an
/// entry is live while its transfer is still reserved with that deadline,
/// which [`DeadlineQueue::next`] reads from the slab. Entries are in
/// deadline order, which is arrival order, so that check reads the slab
/// front to back as the prefetcher likes it, and recording or answering a
/// payment touches no second index (a map of pending ids, kept before,
/// cost an insert and a removal per payment, ~9% of the engine thread
/// under load). Entries live at most one payee timeout.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    queue: VecDeque<(TimestampMs, usize)>,
}

impl DeadlineQueue {
    /// Queues the deadline of the transfer at slab `position`.
    pub fn push(&mut self, deadline: TimestampMs, position: usize) {
        match self.queue.back() {
            Some(&(last, _)) if last > deadline => {
                // Only after a restart with a shorter payee timeout: keep order.
                let at = self.queue.partition_point(|&(d, _)| d <= deadline);
                self.queue.insert(at, (deadline, position));
            }
            _ => self.queue.push_back((deadline, position)),
        }
    }

    /// The earliest pending deadline, if any (stale entries at the front are dropped).
    pub fn next(&mut self, transfers: &TransferTable) -> Option<TimestampMs> {
        while let Some(&(deadline, position)) = self.queue.front() {
            // An evicted transfer was final: its entry is stale.
            let live = transfers.holds(position) && {
                let transfer = transfers.at(position);
                transfer.state == TransferState::Reserved && transfer.deadline == deadline
            };
            if live {
                return Some(deadline);
            }
            self.queue.pop_front();
        }
        None
    }

    /// Removes the earliest pending deadline due at or before `now`, with
    /// its transfer's slab position.
    pub fn pop_due(&mut self, now: TimestampMs, transfers: &TransferTable) -> Option<(TimestampMs, usize)> {
        let deadline = self.next(transfers).filter(|&deadline| deadline <= now)?;
        let (_, position) = self.queue.pop_front().expect("next() saw it");
        Some((deadline, position))
    }

    /// Every queued `(deadline, slab position)`, live or stale, for invariant checks.
    pub fn queued(&self) -> std::collections::HashSet<(TimestampMs, usize)> {
        self.queue.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests;
