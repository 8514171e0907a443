//! Who may look keys up, and how often: the anti-scraping policy of the
//! directory. Each lookup is charged to the end user it is made for (a
//! person's or a business's bucket) and to the participant making it (a
//! bucket sized by the participant's category, A to H, set by the
//! operator). A lookup that leads to a payment gives its token back.
//!
//! Buckets are not durable: after a restart every bucket starts full,
//! which errs on the side of letting payers pay. Pure: the caller passes
//! the time.

use crate::buckets::{BucketPolicy, Exhausted, TokenBucket};
use crate::registry::OwnerKind;
use ponte_domain::{ParticipantId, TimestampMs};
use std::collections::HashMap;

/// Distinct end users with a partly used lookup bucket kept at most; above
/// it, buckets that have refilled (equal to a fresh one) are forgotten.
const USER_BUCKETS_MAX: usize = 1_000_000;

/// A participant's lookup category until the operator sets one.
pub const DEFAULT_CATEGORY: char = 'A';

/// The end user on whose behalf a participant looks a key up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndUser {
    pub kind: OwnerKind,
    /// Canonical national id.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no such key")]
    NotFound,
    #[error("the end user's lookup limit is reached: retry in {retry_after_ms} ms")]
    UserLimited { retry_after_ms: i64 },
    #[error("the participant's lookup limit is reached: retry in {retry_after_ms} ms")]
    ParticipantLimited { retry_after_ms: i64 },
    #[error("end user id: {0}")]
    EndUser(String),
}

/// Whether `category` is one the operator may set ('A' to 'H').
pub fn is_category(category: char) -> bool {
    BucketPolicy::participant_category(category).is_some()
}

/// The lookup buckets of every end user and participant, and the
/// participants' categories.
#[derive(Debug, Default)]
pub struct Lookups {
    user_buckets: HashMap<EndUser, TokenBucket>,
    participant_buckets: HashMap<ParticipantId, TokenBucket>,
    categories: HashMap<ParticipantId, char>,
}

impl Lookups {
    /// Charges a lookup by `caller` for `end_user` at `now`; `found` says
    /// whether the key exists (a miss costs more, so guessing keys is
    /// expensive). Refused: nothing is charged to either.
    pub fn charge(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        end_user: EndUser,
        found: bool,
    ) -> Result<(), LookupError> {
        let user_policy = match end_user.kind {
            OwnerKind::Person => BucketPolicy::PERSON,
            OwnerKind::Business => BucketPolicy::BUSINESS,
        };
        let participant_policy = self.participant_policy(caller);
        if self.user_buckets.len() >= USER_BUCKETS_MAX {
            self.user_buckets.retain(|_, bucket| bucket.available(now) < user_policy.capacity);
        }
        let user = self.user_buckets.entry(end_user).or_insert_with(|| TokenBucket::new(user_policy, now));
        user.take_lookup(found, now)
            .map_err(|Exhausted { retry_after_ms }| LookupError::UserLimited { retry_after_ms })?;
        let participant =
            self.participant_buckets.entry(caller).or_insert_with(|| TokenBucket::new(participant_policy, now));
        if let Err(Exhausted { retry_after_ms }) = participant.take_lookup(found, now) {
            // Not charged to the user for a lookup that did not happen.
            let cost = if found { user_policy.hit_cost } else { user_policy.miss_cost };
            user.give_back(cost, now);
            return Err(LookupError::ParticipantLimited { retry_after_ms });
        }
        Ok(())
    }

    /// Gives back the token of a lookup that led to a payment.
    pub fn give_back(&mut self, user: &EndUser, now: TimestampMs) {
        if let Some(bucket) = self.user_buckets.get_mut(user) {
            bucket.give_back(1, now);
        }
    }

    /// Sets a participant's category; its bucket starts afresh at the new size.
    pub fn set_category(&mut self, id: ParticipantId, category: char) {
        self.categories.insert(id, category);
        self.participant_buckets.remove(&id);
    }

    /// A participant's category ([`DEFAULT_CATEGORY`] until set).
    pub fn category(&self, id: ParticipantId) -> char {
        self.categories.get(&id).copied().unwrap_or(DEFAULT_CATEGORY)
    }

    fn participant_policy(&self, id: ParticipantId) -> BucketPolicy {
        BucketPolicy::participant_category(self.category(id)).unwrap_or(BucketPolicy::PERSON)
    }
}
