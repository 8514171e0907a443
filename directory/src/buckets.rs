//! Token buckets: the anti-scraping limits on directory lookups.
//!
//! A bucket holds up to `capacity` tokens and refills at `refill_per_minute`.
//! A lookup takes tokens (more for a key that does not exist, so guessing
//! keys is expensive); a lookup followed by a payment gives a token back.
//! Pure: the caller passes the time.

use ponte_domain::TimestampMs;

/// Token amounts are kept in thousandths so slow refills (2 per minute)
/// accrue exactly without floating point.
const MILLI: u64 = 1_000;

/// Size, refill and costs of one kind of bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketPolicy {
    pub capacity: u32,
    pub refill_per_minute: u32,
    /// Tokens a lookup of an existing key takes.
    pub hit_cost: u32,
    /// Tokens a lookup of a missing key takes.
    pub miss_cost: u32,
}

impl BucketPolicy {
    /// An end user who is a person (Pix DICT: 100 tokens, 2 per minute, a miss costs 20).
    pub const PERSON: BucketPolicy = BucketPolicy { capacity: 100, refill_per_minute: 2, hit_cost: 1, miss_cost: 20 };
    /// An end user that is a business (Pix DICT: 1,000 tokens, 20 per minute).
    pub const BUSINESS: BucketPolicy =
        BucketPolicy { capacity: 1_000, refill_per_minute: 20, hit_cost: 1, miss_cost: 20 };

    /// Participant categories A (largest) to H, set by the operator
    /// (Pix DICT participant anti-scan categories).
    pub fn participant_category(category: char) -> Option<BucketPolicy> {
        let (capacity, refill_per_minute) = match category {
            'A' => (50_000, 25_000),
            'B' => (40_000, 20_000),
            'C' => (30_000, 15_000),
            'D' => (16_000, 8_000),
            'E' => (5_000, 2_500),
            'F' => (500, 250),
            'G' => (250, 25),
            'H' => (50, 2),
            _ => return None,
        };
        Some(BucketPolicy { capacity, refill_per_minute, hit_cost: 1, miss_cost: 3 })
    }
}

/// Not enough tokens: when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit reached: retry in {retry_after_ms} ms")]
pub struct Exhausted {
    pub retry_after_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    policy: BucketPolicy,
    milli_tokens: u64,
    updated_at: TimestampMs,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(policy: BucketPolicy, now: TimestampMs) -> TokenBucket {
        TokenBucket { policy, milli_tokens: u64::from(policy.capacity) * MILLI, updated_at: now }
    }

    fn refill(&mut self, now: TimestampMs) {
        if now <= self.updated_at {
            return;
        }
        let elapsed_ms = u64::try_from(now - self.updated_at).unwrap_or(0);
        let rate = u64::from(self.policy.refill_per_minute);
        // `rate` tokens per 60,000 ms is `rate` milli-tokens per 60 ms.
        let earned = elapsed_ms.saturating_mul(rate) / 60;
        let cap = u64::from(self.policy.capacity) * MILLI;
        self.milli_tokens = self.milli_tokens.saturating_add(earned).min(cap);
        if self.milli_tokens == cap || rate == 0 {
            self.updated_at = now;
        } else {
            // Advance only by the time the whole milli-tokens took, so the
            // remainder keeps accruing instead of being rounded away.
            self.updated_at += i64::try_from(earned * 60 / rate).unwrap_or(i64::MAX);
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: TimestampMs) -> u32 {
        self.refill(now);
        (self.milli_tokens / MILLI) as u32
    }

    /// Takes `cost` tokens, or says how long until there are enough.
    pub fn take(&mut self, cost: u32, now: TimestampMs) -> Result<(), Exhausted> {
        self.refill(now);
        let needed = u64::from(cost) * MILLI;
        if self.milli_tokens >= needed {
            self.milli_tokens -= needed;
            return Ok(());
        }
        let missing = needed - self.milli_tokens;
        let rate = u64::from(self.policy.refill_per_minute.max(1));
        let retry_after_ms = (missing * 60).div_ceil(rate);
        Err(Exhausted { retry_after_ms: i64::try_from(retry_after_ms).unwrap_or(i64::MAX) })
    }

    /// Takes the cost of a lookup that found (or did not find) its key.
    pub fn take_lookup(&mut self, found: bool, now: TimestampMs) -> Result<(), Exhausted> {
        let cost = if found { self.policy.hit_cost } else { self.policy.miss_cost };
        self.take(cost, now)
    }

    /// Gives tokens back (a lookup that led to a payment), never above capacity.
    pub fn give_back(&mut self, tokens: u32, now: TimestampMs) {
        self.refill(now);
        let cap = u64::from(self.policy.capacity) * MILLI;
        self.milli_tokens = self.milli_tokens.saturating_add(u64::from(tokens) * MILLI).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: TimestampMs = 1_795_730_100_000;

    #[test]
    fn a_person_gets_100_lookups_then_two_a_minute() {
        let mut bucket = TokenBucket::new(BucketPolicy::PERSON, T0);
        for _ in 0..100 {
            bucket.take_lookup(true, T0).unwrap();
        }
        assert_eq!(bucket.take_lookup(true, T0), Err(Exhausted { retry_after_ms: 30_000 }));
        assert!(bucket.take_lookup(true, T0 + 29_999).is_err());
        bucket.take_lookup(true, T0 + 30_000).unwrap();
        assert_eq!(bucket.available(T0 + 30_000 + 60_000), 2);
    }

    #[test]
    fn misses_cost_more_and_payments_give_back() {
        let mut bucket = TokenBucket::new(BucketPolicy::PERSON, T0);
        for _ in 0..5 {
            bucket.take_lookup(false, T0).unwrap();
        }
        assert_eq!(bucket.available(T0), 0);
        let error = bucket.take_lookup(false, T0).unwrap_err();
        assert_eq!(error.retry_after_ms, 600_000, "20 tokens at 2 a minute");
        bucket.give_back(1, T0);
        assert_eq!(bucket.available(T0), 1);
        bucket.give_back(1_000, T0);
        assert_eq!(bucket.available(T0), 100, "never above capacity");
    }

    #[test]
    fn participant_categories() {
        assert_eq!(BucketPolicy::participant_category('A').unwrap().capacity, 50_000);
        assert_eq!(BucketPolicy::participant_category('H').unwrap().refill_per_minute, 2);
        assert_eq!(BucketPolicy::participant_category('Z'), None);
    }

    proptest! {
        /// Over any sequence of takes, no more tokens are ever granted than
        /// the capacity plus what the elapsed time refilled.
        #[test]
        fn never_grants_more_than_capacity_plus_refill(steps in prop::collection::vec((0_i64..5_000, 1_u32..25), 1..300)) {
            let policy = BucketPolicy::PERSON;
            let mut bucket = TokenBucket::new(policy, T0);
            let (mut now, mut granted) = (T0, 0_u64);
            for (advance, cost) in steps {
                now += advance;
                if bucket.take(cost, now).is_ok() {
                    granted += u64::from(cost);
                }
                let elapsed = (now - T0) as u64;
                prop_assert!(granted <= u64::from(policy.capacity) + elapsed * u64::from(policy.refill_per_minute) / 60_000);
            }
        }
    }
}
