//! The directory inside the engine: key registrations, claims and lookups
//! go through the same single writer and journal as payments, so a key that
//! a payment resolves is the key the directory holds at that point in the
//! event order, and every change survives a restart.
//!
//! Lookup rate limits are the directory crate's (`lookups`); they are not
//! journaled.

use super::{Engine, Event, Output};
use ponte_directory::claims::{Claim, ClaimAction, ClaimError, ClaimKind, Claims};
use ponte_directory::keys::{Country, Key};
use ponte_directory::lookups::{EndUser, LookupError, Lookups};
use ponte_directory::registry::{DirectoryError, Entry, LookupView, NewKey, Owner, Registry};
use ponte_domain::{Account, ParticipantId, TimestampMs};

/// The directory's state: entries, claims, and the lookup limits.
pub struct DirectoryState {
    pub registry: Registry,
    pub claims: Claims,
    pub lookups: Lookups,
}

impl std::fmt::Debug for DirectoryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryState").field("entries", &self.registry.len()).finish_non_exhaustive()
    }
}

impl DirectoryState {
    /// An empty directory holding keys to `country`'s rules.
    pub fn new(country: Country) -> Self {
        DirectoryState {
            registry: Registry::new(Box::new(country)),
            claims: Claims::default(),
            lookups: Lookups::default(),
        }
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
        self.directory.lookups.charge(now, caller, end_user, found.is_some())?;
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
