//! The engine's two big collections, built so that neither ever stalls the
//! engine: a sharded transfer table (a growing shard rehashes 1/256 of the
//! transfers, never all of them at once) and a deadline queue with O(1)
//! insertion and lazy removal.
//!
//! Shards are deliberately uneven. With equal shards every shard reaches
//! its next power-of-two capacity at the same moment and they all rehash
//! together — one big stall, seen as multi-second throughput dips at 2, 4
//! and 8 million transfers. Shard `i` instead takes a share proportional to
//! `2^(i/256)`: the shares span one doubling, so the shards' resizes are
//! spread evenly over time.

use super::Transfer;
use ponte_domain::{Account, Amount, EndToEndId, IdKind, ParticipantId, TimestampMs, TransferState};
use std::collections::{HashMap, VecDeque};

const SHARDS: usize = 256;

/// foldhash: fast, and seeded per process so crafted ids cannot aim at one bucket.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Transfers by end-to-end id. Each shard is a `hashbrown::HashTable` of
/// transfers (the id is stored once, inside the transfer) addressed by one
/// xxh3 hash of the id, computed once per lookup: its value range picks the
/// shard, its rotated bits address the slot inside the shard.
pub struct TransferTable {
    shards: Vec<hashbrown::HashTable<Transfer>>,
    len: usize,
}

impl std::fmt::Debug for TransferTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferTable").field("len", &self.len).finish_non_exhaustive()
    }
}

/// Upper hash bound of each shard (see the module docs).
fn shard_bounds() -> &'static [u64; SHARDS] {
    static BOUNDS: std::sync::OnceLock<[u64; SHARDS]> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| {
        let weights: Vec<f64> = (0..SHARDS).map(|i| (i as f64 / SHARDS as f64).exp2()).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = 0.0;
        std::array::from_fn(|i| {
            cumulative += weights[i];
            if i == SHARDS - 1 { u64::MAX } else { (cumulative / total * u64::MAX as f64) as u64 }
        })
    })
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

fn shard_of(hash: u64) -> usize {
    shard_bounds().partition_point(|&bound| bound < hash).min(SHARDS - 1)
}

/// The hash a shard sees. The shard was chosen by the hash's high bits,
/// which are nearly the same for every id in one shard; hashbrown takes
/// its 7-bit tag from the high bits, so they are rotated away first.
fn slot_hash(hash: u64) -> u64 {
    hash.rotate_left(32)
}

fn rehash(transfer: &Transfer) -> u64 {
    slot_hash(hash_of(&transfer.id))
}

impl TransferTable {
    /// A table built for `capacity` transfers: no shard resizes (and no
    /// rehash pauses) until it holds that many, and its memory already
    /// touched, so no insert waits on the kernel zeroing a fresh page.
    pub fn with_capacity(capacity: usize) -> TransferTable {
        let bounds = shard_bounds();
        let shards = (0..SHARDS)
            .map(|i| {
                let low = if i == 0 { 0 } else { bounds[i - 1] };
                let share = (bounds[i] - low) as f64 / u64::MAX as f64;
                // Ids land in shards at random: room for the expected
                // share plus six standard deviations.
                let expected = capacity as f64 * share;
                let room = if capacity == 0 { 0 } else { (expected + 6.0 * expected.sqrt() + 16.0).ceil() as usize };
                let mut shard = hashbrown::HashTable::with_capacity(room);
                prefault(&mut shard);
                shard
            })
            .collect();
        TransferTable { shards, len: 0 }
    }

    pub fn get(&self, id: &EndToEndId) -> Option<&Transfer> {
        let hash = hash_of(id);
        self.shards[shard_of(hash)].find(slot_hash(hash), |t| t.id == *id)
    }

    pub fn get_mut(&mut self, id: &EndToEndId) -> Option<&mut Transfer> {
        let hash = hash_of(id);
        self.shards[shard_of(hash)].find_mut(slot_hash(hash), |t| t.id == *id)
    }

    /// Inserts a new transfer; `false` if the id was already there (nothing changes then).
    pub fn insert(&mut self, transfer: Transfer) -> bool {
        let hash = hash_of(&transfer.id);
        match self.shards[shard_of(hash)].entry(slot_hash(hash), |t| t.id == transfer.id, rehash) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(transfer);
                self.len += 1;
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn values(&self) -> impl Iterator<Item = &Transfer> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

/// Writes every slot of an empty shard once (with placeholder transfers,
/// removed again), so the kernel maps and zeroes its pages now rather than
/// on the hot path. Safe code cannot touch a hash table's unused slots any
/// other way.
fn prefault(shard: &mut hashbrown::HashTable<Transfer>) {
    let room = shard.capacity();
    if room == 0 {
        return;
    }
    let id = EndToEndId::from_parts(IdKind::Payment, ParticipantId::new(1).expect("valid code"), 0, b"PLACEHOLDER");
    let placeholder = Transfer {
        id,
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
    };
    for n in 0..room {
        let mut transfer = placeholder.clone();
        // Distinct ids spread over the slots; their content is never read.
        transfer.digest = n as u128;
        let spread = |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        shard.insert_unique(spread(n as u64), transfer, |t| spread(t.digest as u64));
    }
    debug_assert_eq!(shard.capacity(), room, "filling to capacity must not grow the shard");
    shard.clear();
}

/// Payee deadlines in due order, with an index of the ones still pending.
///
/// Settling or rejecting a transfer calls [`DeadlineQueue::resolve`], which
/// drops it from the small `pending` index but leaves its queue entry;
/// [`DeadlineQueue::pop_due`] skips such stale entries by asking the index,
/// so expiry never touches the (large, cold) transfer table for a payment
/// that was answered in time. Entries live at most one payee timeout.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    queue: VecDeque<(TimestampMs, EndToEndId)>,
    /// Reserved transfers and their deadline: as many as are in flight.
    pending: Map<EndToEndId, TimestampMs>,
}

impl DeadlineQueue {
    pub fn push(&mut self, deadline: TimestampMs, id: EndToEndId) {
        let previous = self.pending.insert(id, deadline);
        debug_assert!(previous.is_none(), "deadline of {id} pushed twice");
        match self.queue.back() {
            Some(&(last, _)) if last > deadline => {
                // Only after a restart with a shorter payee timeout: keep order.
                let at = self.queue.partition_point(|&(d, _)| d <= deadline);
                self.queue.insert(at, (deadline, id));
            }
            _ => self.queue.push_back((deadline, id)),
        }
    }

    /// The transfer is no longer waiting for its payee.
    pub fn resolve(&mut self, id: &EndToEndId) {
        self.pending.remove(id);
    }

    /// The earliest pending deadline, if any (stale entries at the front are dropped).
    pub fn next(&mut self) -> Option<TimestampMs> {
        while let Some(&(deadline, id)) = self.queue.front() {
            if self.pending.get(&id) == Some(&deadline) {
                return Some(deadline);
            }
            self.queue.pop_front();
        }
        None
    }

    /// Removes and returns the earliest pending transfer due at or before `now`.
    pub fn pop_due(&mut self, now: TimestampMs) -> Option<(TimestampMs, EndToEndId)> {
        let deadline = self.next().filter(|&deadline| deadline <= now)?;
        let (_, id) = self.queue.pop_front().expect("next() saw it");
        self.pending.remove(&id);
        Some((deadline, id))
    }

    /// Every pending transfer and its deadline, for invariant checks.
    pub fn pending(&self) -> &Map<EndToEndId, TimestampMs> {
        &self.pending
    }

    /// Whether `(deadline, id)` has a queue entry, for invariant checks.
    pub fn queued(&self) -> std::collections::HashSet<(TimestampMs, EndToEndId)> {
        self.queue.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_span_one_doubling_so_they_resize_at_different_times() {
        let mut counts = vec![0_u32; SHARDS];
        for n in 0..200_000_u64 {
            let suffix = format!("{n:011}");
            let id = EndToEndId::from_parts(
                ponte_domain::IdKind::Payment,
                ponte_domain::ParticipantId::new(1).unwrap(),
                0,
                suffix.as_bytes().try_into().unwrap(),
            );
            counts[shard_of(hash_of(&id))] += 1;
        }
        let (first, last) = (f64::from(counts[0]), f64::from(counts[SHARDS - 1]));
        assert!((1.7..2.3).contains(&(last / first)), "first {first}, last {last}");
        assert!(counts.iter().all(|&c| c > 0));
    }

    #[test]
    fn a_table_built_for_a_capacity_holds_it_without_growing_and_starts_empty() {
        let mut table = TransferTable::with_capacity(50_000);
        assert_eq!(table.len(), 0);
        assert_eq!(table.values().count(), 0, "the placeholders are gone");
        let capacities: Vec<usize> = table.shards.iter().map(hashbrown::HashTable::capacity).collect();
        assert!(capacities.iter().sum::<usize>() >= 50_000);
        let placeholder = Transfer { ..table_transfer(0) };
        for n in 0..50_000_u64 {
            assert!(table.insert(Transfer { id: id_of(n), ..placeholder.clone() }));
        }
        assert!(!table.insert(Transfer { id: id_of(7), ..placeholder.clone() }), "ids stay unique");
        let after: Vec<usize> = table.shards.iter().map(hashbrown::HashTable::capacity).collect();
        assert_eq!(capacities, after, "no shard resized");
        assert!((0..50_000).all(|n| table.get(&id_of(n)).is_some_and(|t| t.id == id_of(n))));
    }

    fn id_of(n: u64) -> EndToEndId {
        let suffix = format!("{n:011}");
        EndToEndId::from_parts(
            IdKind::Payment,
            ParticipantId::new(1).unwrap(),
            0,
            suffix.as_bytes().try_into().unwrap(),
        )
    }

    fn table_transfer(n: u64) -> Transfer {
        Transfer {
            id: id_of(n),
            payer: Account::unresolved(),
            payee: Account::unresolved(),
            amount: Amount::from_minor(1),
            state: TransferState::Settled,
            reason: None,
            created_at: 0,
            settled_at: Some(0),
            deadline: 0,
            digest: 1,
            returned: Amount::ZERO,
            cycle: 1,
        }
    }
}
