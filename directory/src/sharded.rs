//! A hash map that never stops everything to grow.
//!
//! A `HashMap` doubles when full, rehashing every entry in one go: with a
//! million directory keys that was a one-second pause of the engine (all
//! payments waited), and twice as long at each doubling after. Here the
//! entries are spread over [`SHARDS`] maps of deliberately uneven shares:
//! with equal shards every shard would reach its next power-of-two
//! capacity at the same moment and they would all rehash together. Shard
//! `i` takes a share proportional to `2^(i/256)`, so the shares span one
//! doubling and the shards' resizes are spread evenly over time; each one
//! rehashes 1/256 of the entries. The switch's transfer index uses the
//! same routing ([`shard_of`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

/// Shards per map.
pub const SHARDS: usize = 256;

/// Upper hash bound of each shard (see the module docs).
pub fn shard_bounds() -> &'static [u64; SHARDS] {
    &routing().bounds
}

/// Buckets of equal hash ranges, each narrower than the smallest shard
/// (whose share is 1/369 of the range), so a bucket holds at most one
/// shard boundary.
const BUCKET_BITS: u32 = 9;

struct Routing {
    bounds: [u64; SHARDS],
    /// The shard holding each bucket's first hash.
    first: [u8; 1 << BUCKET_BITS],
}

fn routing() -> &'static Routing {
    static ROUTING: std::sync::OnceLock<Routing> = std::sync::OnceLock::new();
    ROUTING.get_or_init(|| {
        let weights: Vec<f64> = (0..SHARDS).map(|i| (i as f64 / SHARDS as f64).exp2()).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = 0.0;
        let bounds: [u64; SHARDS] = std::array::from_fn(|i| {
            cumulative += weights[i];
            if i == SHARDS - 1 { u64::MAX } else { (cumulative / total * u64::MAX as f64) as u64 }
        });
        let first = std::array::from_fn(|bucket| {
            let start = (bucket as u64) << (64 - BUCKET_BITS);
            bounds.partition_point(|&bound| bound < start) as u8
        });
        Routing { bounds, first }
    })
}

/// The shard of a (uniformly distributed) 64-bit hash: picked by its value
/// range, so by its high bits (the first shard whose bound is at least the
/// hash). Its bucket names the shard or the one before it, so this is two
/// loads and a compare, not a binary search over 256 bounds (eight
/// unpredictable branches: a tenth of a replay's time went there).
pub fn shard_of(hash: u64) -> usize {
    let routing = routing();
    let shard = usize::from(routing.first[(hash >> (64 - BUCKET_BITS)) as usize]);
    shard + usize::from(routing.bounds[shard] < hash)
}

/// A map from `K` to `V` in uneven shards (see the module docs). Keys are
/// routed by a per-process seeded SipHash, so crafted keys cannot aim at
/// one shard; each shard is a std `HashMap` with its own seed.
pub struct ShardedMap<K, V> {
    router: RandomState,
    shards: Vec<HashMap<K, V>>,
    len: usize,
}

impl<K, V> std::fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedMap").field("len", &self.len).finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap { router: RandomState::new(), shards: (0..SHARDS).map(|_| HashMap::new()).collect(), len: 0 }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard(&self, key: &K) -> usize {
        shard_of(self.router.hash_one(key))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.shards[self.shard(key)].contains_key(key)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let shard = self.shard(key);
        self.shards[shard].get_mut(key)
    }

    /// Inserts, returning the value `key` had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard(&key);
        let previous = self.shards[shard].insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let shard = self.shard(key);
        let removed = self.shards[shard].remove(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// The value of `key`, inserted as `V::default()` first if absent.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let shard = self.shard(&key);
        match self.shards[shard].entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                self.len += 1;
                entry.insert(V::default())
            }
        }
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_routed_to_the_first_shard_whose_bound_reaches_it() {
        let by_search = |hash: u64| shard_bounds().partition_point(|&bound| bound < hash).min(SHARDS - 1);
        let mut probes = vec![0, 1, u64::MAX - 1, u64::MAX];
        for &bound in shard_bounds() {
            probes.extend([bound.saturating_sub(1), bound, bound.saturating_add(1)]);
        }
        for bucket in 0..1u64 << BUCKET_BITS {
            let start = bucket << (64 - BUCKET_BITS);
            probes.extend([start, start.wrapping_sub(1)]);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        probes.extend((0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }));
        for hash in probes {
            assert_eq!(shard_of(hash), by_search(hash), "hash {hash:#x}");
        }
    }

    #[test]
    fn shards_span_one_doubling_so_they_resize_at_different_times() {
        let router = RandomState::new();
        let mut counts = vec![0_u32; SHARDS];
        for n in 0..200_000_u64 {
            counts[shard_of(router.hash_one(n))] += 1;
        }
        let (first, last) = (f64::from(counts[0]), f64::from(counts[SHARDS - 1]));
        assert!((1.7..2.3).contains(&(last / first)), "first {first}, last {last}");
        assert!(counts.iter().all(|&c| c > 0));
    }

    #[test]
    fn growing_never_rehashes_more_than_a_small_share_at_once() {
        let mut map = ShardedMap::default();
        let mut capacities: Vec<usize> = map.shards.iter().map(HashMap::capacity).collect();
        let mut largest_step = 0;
        for n in 0..300_000_u64 {
            map.insert(n, n);
            let shard = map.shard(&n);
            let now = map.shards[shard].capacity();
            if now != capacities[shard] {
                largest_step = largest_step.max(map.shards[shard].len());
                capacities[shard] = now;
            }
        }
        // One std HashMap would have rehashed ~229k entries at its last doubling.
        assert!(largest_step < 300_000 / 64, "a resize moved {largest_step} entries");
    }

    proptest::proptest! {
        #[test]
        fn the_map_agrees_with_a_hash_map(ops in proptest::collection::vec((0_u8..4, 0_u16..300), 1..800)) {
            let mut map = ShardedMap::default();
            let mut model = HashMap::new();
            for (op, key) in ops {
                match op {
                    0 => proptest::prop_assert_eq!(map.insert(key, u32::from(key) + 1), model.insert(key, u32::from(key) + 1)),
                    1 => proptest::prop_assert_eq!(map.remove(&key), model.remove(&key)),
                    2 => *map.get_or_default(key) += 1,
                    _ => proptest::prop_assert_eq!(map.get(&key), model.get(&key)),
                }
                if op == 2 {
                    *model.entry(key).or_default() += 1;
                }
                proptest::prop_assert_eq!(map.len(), model.len());
                proptest::prop_assert_eq!(map.contains_key(&key), model.contains_key(&key));
            }
            let mut values: Vec<u32> = map.values().copied().collect();
            let mut expected: Vec<u32> = model.values().copied().collect();
            values.sort_unstable();
            expected.sort_unstable();
            proptest::prop_assert_eq!(values, expected);
        }
    }
}
