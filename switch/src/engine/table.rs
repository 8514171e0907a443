//! The engine's two big collections, built so that neither ever stalls the
//! engine: a sharded transfer table (a growing shard rehashes 1/256 of the
//! transfers, never all of them at once) and a deadline queue with O(1)
//! insertion and lazy removal.

use super::Transfer;
use ponte_domain::{EndToEndId, TimestampMs};
use std::collections::{HashMap, VecDeque};

const SHARDS: usize = 256;

/// foldhash: fast, and seeded per process so crafted ids cannot aim at one bucket.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Transfers by end-to-end id.
#[derive(Debug)]
pub struct TransferTable {
    shards: Vec<Map<EndToEndId, Transfer>>,
    len: usize,
}

fn shard_of(id: &EndToEndId) -> usize {
    // The id's random tail spreads well; xxh3 keeps a patterned tail
    // (sequential counters) from piling into one shard.
    (xxhash_rust::xxh3::xxh3_64(id.as_str().as_bytes()) >> 56) as usize % SHARDS
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

/// Payee deadlines in due order. Settling or rejecting a transfer does not
/// remove its entry: [`super::Engine::expire`] skips entries whose transfer
/// is no longer waiting. Entries live at most one payee timeout.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    queue: VecDeque<(TimestampMs, EndToEndId)>,
}

impl DeadlineQueue {
    pub fn push(&mut self, deadline: TimestampMs, id: EndToEndId) {
        match self.queue.back() {
            Some(&(last, _)) if last > deadline => {
                // Only after a restart with a shorter payee timeout: keep order.
                let at = self.queue.partition_point(|&(d, _)| d <= deadline);
                self.queue.insert(at, (deadline, id));
            }
            _ => self.queue.push_back((deadline, id)),
        }
    }

    pub fn front(&self) -> Option<(TimestampMs, EndToEndId)> {
        self.queue.front().copied()
    }

    pub fn pop_front(&mut self) {
        self.queue.pop_front();
    }

    /// Every entry, for invariant checks.
    pub fn entries(&self) -> std::collections::HashSet<(TimestampMs, EndToEndId)> {
        self.queue.iter().copied().collect()
    }
}
