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
use ponte_domain::{EndToEndId, TimestampMs};
use std::collections::{HashMap, VecDeque};

const SHARDS: usize = 256;

/// foldhash: fast, and seeded per process so crafted ids cannot aim at one bucket.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Transfers by end-to-end id.
#[derive(Debug)]
pub struct TransferTable {
    shards: Vec<Map<EndToEndId, Transfer>>,
    len: usize,
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

fn shard_of(id: &EndToEndId) -> usize {
    // xxh3 of the whole id: a patterned tail (sequential counters) still spreads.
    let hash = xxhash_rust::xxh3::xxh3_64(id.as_str().as_bytes());
    shard_bounds().partition_point(|&bound| bound < hash).min(SHARDS - 1)
}

impl TransferTable {
    pub fn new() -> TransferTable {
        TransferTable { shards: (0..SHARDS).map(|_| Map::default()).collect(), len: 0 }
    }

    pub fn get(&self, id: &EndToEndId) -> Option<&Transfer> {
        self.shards[shard_of(id)].get(id)
    }

    pub fn get_mut(&mut self, id: &EndToEndId) -> Option<&mut Transfer> {
        self.shards[shard_of(id)].get_mut(id)
    }

    /// Inserts a new transfer; `false` if the id was already there (nothing changes then).
    pub fn insert(&mut self, transfer: Transfer) -> bool {
        match self.shards[shard_of(&transfer.id)].entry(transfer.id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
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
        self.shards.iter().flat_map(|s| s.values())
    }
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
            counts[shard_of(&id)] += 1;
        }
        let (first, last) = (f64::from(counts[0]), f64::from(counts[SHARDS - 1]));
        assert!((1.7..2.3).contains(&(last / first)), "first {first}, last {last}");
        assert!(counts.iter().all(|&c| c > 0));
    }
}
