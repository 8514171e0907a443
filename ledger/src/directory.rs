//! The directory inside the engine: key registrations, claims and lookups
//! go through the same single writer and journal as payments, so a key that
//! a payment resolves is the key the directory holds at that point in the
//! event order, and every change survives a restart.
//!
//! Lookup rate limits (token buckets) are not journaled: after a restart
//! every bucket starts full, which errs on the side of letting payers pay.

use super::{Engine, Event, Output};
use ponte_directory::buckets::{BucketPolicy, Exhausted, TokenBucket};
use ponte_directory::claims::{Claim, ClaimAction, ClaimError, ClaimKind, Claims};
use ponte_directory::keys::{Brazil, Key};
use ponte_directory::registry::{DirectoryError, Entry, LookupView, NewKey, Owner, OwnerKind, Registry};
use ponte_domain::{Account, ParticipantId, TimestampMs};
use std::collections::HashMap;

/// Distinct end users with a partly used lookup bucket kept at most; above
/// it, buckets that have refilled (equal to a fresh one) are forgotten.
const USER_BUCKETS_MAX: usize = 1_000_000;

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

pub struct DirectoryState {
    pub registry: Registry,
    pub claims: Claims,
    user_buckets: HashMap<EndUser, TokenBucket>,
    participant_buckets: HashMap<ParticipantId, TokenBucket>,
    categories: HashMap<ParticipantId, char>,
}

impl std::fmt::Debug for DirectoryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryState").field("entries", &self.registry.len()).finish_non_exhaustive()
    }
}

impl Default for DirectoryState {
    fn default() -> Self {
        DirectoryState {
            registry: Registry::new(Box::new(Brazil)),
            claims: Claims::default(),
            user_buckets: HashMap::new(),
            participant_buckets: HashMap::new(),
            categories: HashMap::new(),
        }
    }
}

/// A participant's lookup category until the operator sets one.
pub const DEFAULT_CATEGORY: char = 'A';

impl DirectoryState {
    fn participant_policy(&self, id: ParticipantId) -> BucketPolicy {
        let category = self.categories.get(&id).copied().unwrap_or(DEFAULT_CATEGORY);
        BucketPolicy::participant_category(category).unwrap_or(BucketPolicy::PERSON)
    }

    /// Gives back the token of a lookup that led to a payment.
    pub fn give_back(&mut self, user: &EndUser, now: TimestampMs) {
        if let Some(bucket) = self.user_buckets.get_mut(user) {
            bucket.give_back(1, now);
        }
    }

    pub fn set_category(&mut self, id: ParticipantId, category: char) {
        self.categories.insert(id, category);
        self.participant_buckets.remove(&id);
    }
}

impl Engine {
    pub(super) fn register_key(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        key: NewKey,
        account: Account,
        owner: Owner,
        out: &mut Output,
    ) -> Result<Entry, DirectoryError> {
        let entry = self.directory.registry.check_create(caller, key, account, owner, now)?;
        self.record(Event::KeyRegistered { entry: entry.clone() }, out);
        Ok(entry)
    }

    pub(super) fn delete_key(
        &mut self,
        caller: ParticipantId,
        key: Key,
        out: &mut Output,
    ) -> Result<Entry, DirectoryError> {
        let entry = self.directory.registry.check_holder(caller, &key)?.clone();
        if self.directory.claims.in_progress(&key) {
            // A key with a claim in progress stays until the claim ends.
            return Err(DirectoryError::KeyExists);
        }
        self.record(Event::KeyDeleted { key }, out);
        Ok(entry)
    }

    pub(super) fn move_key(
        &mut self,
        caller: ParticipantId,
        key: Key,
        account: Account,
        out: &mut Output,
    ) -> Result<Entry, DirectoryError> {
        self.directory.registry.check_move(caller, &key, account)?;
        self.record(Event::KeyMoved { key: key.clone(), account }, out);
        Ok(self.directory.registry.get(&key).expect("just moved").clone())
    }

    pub(super) fn lookup_key(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        end_user: EndUser,
        key: &Key,
    ) -> Result<LookupView, LookupError> {
        let found = self.directory.registry.lookup(key);
        let user_policy = match end_user.kind {
            OwnerKind::Person => BucketPolicy::PERSON,
            OwnerKind::Business => BucketPolicy::BUSINESS,
        };
        let participant_policy = self.directory.participant_policy(caller);
        let d = &mut self.directory;
        if d.user_buckets.len() >= USER_BUCKETS_MAX {
            d.user_buckets.retain(|_, bucket| bucket.available(now) < user_policy.capacity);
        }
        let user = d.user_buckets.entry(end_user).or_insert_with(|| TokenBucket::new(user_policy, now));
        user.take_lookup(found.is_some(), now)
            .map_err(|Exhausted { retry_after_ms }| LookupError::UserLimited { retry_after_ms })?;
        let participant =
            d.participant_buckets.entry(caller).or_insert_with(|| TokenBucket::new(participant_policy, now));
        if let Err(Exhausted { retry_after_ms }) = participant.take_lookup(found.is_some(), now) {
            // Not charged to the user for a lookup that did not happen.
            let cost = if found.is_some() { user_policy.hit_cost } else { user_policy.miss_cost };
            user.give_back(cost, now);
            return Err(LookupError::ParticipantLimited { retry_after_ms });
        }
        found.ok_or(LookupError::NotFound)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_claim(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        kind: ClaimKind,
        key: Key,
        account: Account,
        owner: Owner,
        out: &mut Output,
    ) -> Result<Claim, ClaimError> {
        let owner = self.directory.registry.check_owner(owner)?;
        let claim = self.directory.claims.check_open(
            &self.directory.registry,
            caller,
            kind,
            &key,
            account,
            owner,
            now,
            self.config.claim_window_ms,
        )?;
        self.record(Event::ClaimStored { claim: claim.clone() }, out);
        Ok(claim)
    }

    pub(super) fn act_on_claim(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        id: u64,
        action: ClaimAction,
        out: &mut Output,
    ) -> Result<Claim, ClaimError> {
        let claim = self.directory.claims.check_action(caller, id, action, now)?;
        if action == ClaimAction::Complete {
            let transfer = Claims::completion(&claim, &self.directory.registry, now)?;
            self.record(Event::ClaimCompleted { claim: claim.clone(), entry: transfer.new_entry }, out);
        } else {
            self.record(Event::ClaimStored { claim: claim.clone() }, out);
        }
        Ok(claim)
    }

    /// Resolves claims whose window lapsed.
    pub(super) fn expire_claims(&mut self, now: TimestampMs, out: &mut Output) {
        for claim in self.directory.claims.lapsed(now) {
            self.record(Event::ClaimStored { claim }, out);
        }
    }
}
