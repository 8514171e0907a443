//! Claims: moving a key that someone else holds.
//!
//! - An **ownership** claim: "someone else registered my phone/email". The
//!   claimer participant asks for the key for its customer.
//! - A **portability** claim: the key's owner moves it to another participant.
//!
//! Lifecycle: `Open` -> `WaitingResolution` (the donor participant has seen
//! it) -> `Confirmed` (the donor agreed, or the window lapsed on an ownership
//! claim) -> `Completed` (the claimer took the key), or `Cancelled` at any
//! point before completion. The donor has a resolution window (7 days by
//! default) counted from the opening; when it lapses an ownership claim is
//! confirmed (the holder did not defend the key) and a portability claim is
//! cancelled (the owner's current participant did not agree). Random keys
//! can be neither claimed nor ported; national ids can only be ported.
//! Time is an argument: tests drive the window without sleeping.

use crate::keys::{Key, KeyType};
use crate::registry::{DirectoryError, Entry, Owner, Registry};
use ponte_domain::{Account, ParticipantId, TimestampMs};
use std::collections::{BTreeMap, HashMap};

/// The donor's resolution window by default: 7 days.
pub const RESOLUTION_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClaimKind {
    Ownership,
    Portability,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClaimStatus {
    Open,
    WaitingResolution,
    Confirmed,
    Completed,
    Cancelled,
}

impl ClaimStatus {
    pub fn is_final(self) -> bool {
        matches!(self, ClaimStatus::Completed | ClaimStatus::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    pub id: u64,
    pub kind: ClaimKind,
    pub key: Key,
    pub claimer: ParticipantId,
    pub donor: ParticipantId,
    /// Where the key goes when the claim completes.
    pub account: Account,
    pub owner: Owner,
    pub status: ClaimStatus,
    pub opened_at: TimestampMs,
    pub resolve_by: TimestampMs,
    pub updated_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("random keys can be neither claimed nor ported")]
    RandomKey,
    #[error("national id keys can only be ported, not claimed")]
    NationalIdOwnership,
    #[error("portability moves a key for its own owner: the owner id must match")]
    PortabilityOwner,
    #[error("the key is already held by the claiming participant")]
    AlreadyHeld,
    #[error("the key already has a claim in progress")]
    ClaimInProgress,
    #[error("no such claim")]
    UnknownClaim,
    #[error("only the {0} participant of this claim may do that")]
    WrongParty(&'static str),
    #[error("the claim is {0:?}, which does not allow that")]
    WrongStatus(ClaimStatus),
}

/// Every claim, by id, and the one in progress per key.
#[derive(Debug, Default)]
pub struct Claims {
    claims: BTreeMap<u64, Claim>,
    active_by_key: HashMap<Key, u64>,
    next_id: u64,
}

/// What to change when a claim completes: the entry to remove and the one to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub key: Key,
    pub new_entry: Entry,
}

impl Claims {
    /// Every claim, open or final, by id.
    pub fn all(&self) -> impl Iterator<Item = &Claim> {
        self.claims.values()
    }

    pub fn get(&self, id: u64) -> Option<&Claim> {
        self.claims.get(&id)
    }

    /// Whether `key` has a claim that has not finished.
    pub fn in_progress(&self, key: &Key) -> bool {
        self.active_by_key.contains_key(key)
    }

    /// Claims a participant is party to (as claimer or donor), oldest first.
    /// A page of the claims `participant` is party to, in id order: at
    /// most `limit` with ids above `after`.
    pub fn of_page(&self, participant: ParticipantId, after: Option<u64>, limit: usize) -> Vec<&Claim> {
        let from = after.map_or(0, |id| id.saturating_add(1));
        self.claims
            .range(from..)
            .map(|(_, c)| c)
            .filter(|c| c.claimer == participant || c.donor == participant)
            .take(limit)
            .collect()
    }

    pub fn of(&self, participant: ParticipantId) -> Vec<&Claim> {
        self.claims.values().filter(|c| c.claimer == participant || c.donor == participant).collect()
    }

    /// Checks a new claim and returns it (not yet stored; see [`Claims::store`]).
    #[allow(clippy::too_many_arguments)]
    pub fn check_open(
        &self,
        registry: &Registry,
        claimer: ParticipantId,
        kind: ClaimKind,
        key: &Key,
        account: Account,
        owner: Owner,
        now: TimestampMs,
        window_ms: i64,
    ) -> Result<Claim, ClaimError> {
        if key.kind() == KeyType::Random {
            return Err(ClaimError::RandomKey);
        }
        if kind == ClaimKind::Ownership && matches!(key.kind(), KeyType::PersonId | KeyType::BusinessId) {
            return Err(ClaimError::NationalIdOwnership);
        }
        if account.participant != claimer {
            return Err(DirectoryError::AccountElsewhere.into());
        }
        let entry = registry.get(key).ok_or(DirectoryError::NotFound)?;
        if kind == ClaimKind::Portability {
            if entry.account.participant == claimer {
                return Err(ClaimError::AlreadyHeld);
            }
            if entry.owner.id != owner.id || entry.owner.kind != owner.kind {
                return Err(ClaimError::PortabilityOwner);
            }
        }
        if self.active_by_key.contains_key(key) {
            return Err(ClaimError::ClaimInProgress);
        }
        registry.check_room(key, account, owner.kind)?;
        Ok(Claim {
            id: self.next_id,
            kind,
            key: key.clone(),
            claimer,
            donor: entry.account.participant,
            account,
            owner,
            status: ClaimStatus::Open,
            opened_at: now,
            resolve_by: now.saturating_add(window_ms),
            updated_at: now,
        })
    }

    /// Stores a claim (new or changed). Also used on replay.
    pub fn store(&mut self, claim: Claim) {
        if claim.status.is_final() {
            self.active_by_key.remove(&claim.key);
        } else {
            self.active_by_key.insert(claim.key.clone(), claim.id);
        }
        self.next_id = self.next_id.max(claim.id + 1);
        self.claims.insert(claim.id, claim);
    }

    /// The claim as it would be after `actor` does `action` at `now`.
    pub fn check_action(
        &self,
        actor: ParticipantId,
        id: u64,
        action: ClaimAction,
        now: TimestampMs,
    ) -> Result<Claim, ClaimError> {
        let mut claim = self.claims.get(&id).cloned().ok_or(ClaimError::UnknownClaim)?;
        use ClaimStatus as S;
        let next = match (action, claim.status) {
            (ClaimAction::Acknowledge, S::Open) if actor == claim.donor => S::WaitingResolution,
            (ClaimAction::Confirm, S::Open | S::WaitingResolution) if actor == claim.donor => S::Confirmed,
            (ClaimAction::Cancel, S::Open | S::WaitingResolution | S::Confirmed)
                if actor == claim.donor || actor == claim.claimer =>
            {
                // Once confirmed, only the claimer may still give up.
                if claim.status == S::Confirmed && actor != claim.claimer {
                    return Err(ClaimError::WrongParty("claimer"));
                }
                S::Cancelled
            }
            (ClaimAction::Complete, S::Confirmed) if actor == claim.claimer => S::Completed,
            (ClaimAction::Acknowledge | ClaimAction::Confirm, S::Open | S::WaitingResolution) => {
                return Err(ClaimError::WrongParty("donor"));
            }
            (ClaimAction::Complete, S::Confirmed) => return Err(ClaimError::WrongParty("claimer")),
            (ClaimAction::Cancel, S::Open | S::WaitingResolution) => {
                return Err(ClaimError::WrongParty("claimer or donor"));
            }
            (_, status) => return Err(ClaimError::WrongStatus(status)),
        };
        claim.status = next;
        claim.updated_at = now;
        Ok(claim)
    }

    /// When the earliest unresolved claim's window lapses, if any.
    /// When the longest-closed claim closed (`None`: no claim is closed).
    pub fn earliest_closed(&self) -> Option<TimestampMs> {
        self.claims.values().filter(|c| c.status.is_final()).map(|c| c.updated_at).min()
    }

    /// Forgets the claims closed before `before`; how many.
    pub fn forget_closed_before(&mut self, before: TimestampMs) -> usize {
        let held = self.claims.len();
        self.claims.retain(|_, c| !(c.status.is_final() && c.updated_at < before));
        held - self.claims.len()
    }

    pub fn earliest_deadline(&self) -> Option<TimestampMs> {
        self.active_by_key
            .values()
            .filter_map(|id| self.claims.get(id))
            .filter(|c| matches!(c.status, ClaimStatus::Open | ClaimStatus::WaitingResolution))
            .map(|c| c.resolve_by)
            .min()
    }

    /// Claims whose window lapsed by `now`, as they resolve: ownership
    /// claims confirmed, portability claims cancelled.
    pub fn lapsed(&self, now: TimestampMs) -> Vec<Claim> {
        self.active_by_key
            .values()
            .filter_map(|id| self.claims.get(id))
            .filter(|c| matches!(c.status, ClaimStatus::Open | ClaimStatus::WaitingResolution) && c.resolve_by <= now)
            .map(|c| {
                let mut c = c.clone();
                c.status = match c.kind {
                    ClaimKind::Ownership => ClaimStatus::Confirmed,
                    ClaimKind::Portability => ClaimStatus::Cancelled,
                };
                c.updated_at = now;
                c
            })
            .collect()
    }

    /// What completing `claim` does to the directory.
    pub fn completion(claim: &Claim, registry: &Registry, now: TimestampMs) -> Result<Transfer, ClaimError> {
        registry.get(&claim.key).ok_or(DirectoryError::NotFound)?;
        // The claimer's account may have filled up since the claim opened:
        // it must free a place (or cancel) before it can take the key.
        registry.check_room(&claim.key, claim.account, claim.owner.kind)?;
        Ok(Transfer {
            key: claim.key.clone(),
            new_entry: Entry {
                key: claim.key.clone(),
                account: claim.account,
                owner: claim.owner.clone(),
                created_at: now,
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClaimAction {
    Acknowledge,
    Confirm,
    Cancel,
    Complete,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{self, Brazil};
    use crate::registry::{NewKey, OwnerKind, PERSON_KEYS_MAX};
    use ponte_domain::AccountType;

    const T0: TimestampMs = 1_795_730_100_000;
    const DAY: i64 = 24 * 3_600_000;

    fn pid(code: u32) -> ParticipantId {
        ParticipantId::new(code).unwrap()
    }

    fn account(code: u32, number: &str) -> Account {
        Account::new(pid(code), "1", number, AccountType::Checking).unwrap()
    }

    fn maria() -> Owner {
        Owner { kind: OwnerKind::Person, id: "52998224725".into(), name: "Maria Souza".into() }
    }

    fn joao() -> Owner {
        Owner { kind: OwnerKind::Person, id: "11144477735".into(), name: "Joao Lima".into() }
    }

    /// A registry where participant 1 holds `phone` for Maria.
    fn setup() -> (Registry, Claims, Key) {
        let mut registry = Registry::new(Box::new(Brazil));
        let entry = registry
            .check_create(
                pid(1),
                NewKey::Chosen { kind: KeyType::Phone, value: "+5561988880000".into() },
                account(1, "10"),
                maria(),
                T0,
            )
            .unwrap();
        let key = entry.key.clone();
        registry.insert(entry);
        (registry, Claims::default(), key)
    }

    fn open(
        claims: &mut Claims,
        registry: &Registry,
        kind: ClaimKind,
        key: &Key,
        claimer: u32,
        owner: Owner,
    ) -> Result<u64, ClaimError> {
        let claim = claims.check_open(
            registry,
            pid(claimer),
            kind,
            key,
            account(claimer, "20"),
            owner,
            T0,
            RESOLUTION_WINDOW_MS,
        )?;
        let id = claim.id;
        claims.store(claim);
        Ok(id)
    }

    fn act(
        claims: &mut Claims,
        actor: u32,
        id: u64,
        action: ClaimAction,
        now: TimestampMs,
    ) -> Result<ClaimStatus, ClaimError> {
        let claim = claims.check_action(pid(actor), id, action, now)?;
        let status = claim.status;
        claims.store(claim);
        Ok(status)
    }

    #[test]
    fn portability_confirmed_by_the_donor_then_completed() {
        let (mut registry, mut claims, key) = setup();
        let id = open(&mut claims, &registry, ClaimKind::Portability, &key, 2, maria()).unwrap();
        assert_eq!(claims.of(pid(1)).len(), 1, "the donor sees the claim");
        assert_eq!(act(&mut claims, 1, id, ClaimAction::Acknowledge, T0 + 1), Ok(ClaimStatus::WaitingResolution));
        assert_eq!(act(&mut claims, 2, id, ClaimAction::Confirm, T0 + 2), Err(ClaimError::WrongParty("donor")));
        assert_eq!(act(&mut claims, 1, id, ClaimAction::Confirm, T0 + 2), Ok(ClaimStatus::Confirmed));
        assert_eq!(act(&mut claims, 1, id, ClaimAction::Complete, T0 + 3), Err(ClaimError::WrongParty("claimer")));
        let claim = claims.check_action(pid(2), id, ClaimAction::Complete, T0 + 3).unwrap();
        let transfer = Claims::completion(&claim, &registry, T0 + 3).unwrap();
        registry.remove(&transfer.key);
        registry.insert(transfer.new_entry);
        claims.store(claim);
        assert_eq!(registry.get(&key).unwrap().account, account(2, "20"));
        assert_eq!(claims.get(id).unwrap().status, ClaimStatus::Completed);
        // Finished: the key can be claimed again.
        assert!(open(&mut claims, &registry, ClaimKind::Portability, &key, 1, maria()).is_ok());
    }

    /// Gives participant 2's account "20" keys for Joao, up to `count`.
    fn fill_claimers_account(registry: &mut Registry, count: u32, first: u32) {
        for i in first..first + count {
            let entry = registry
                .check_create(
                    pid(2),
                    NewKey::Chosen { kind: KeyType::Phone, value: format!("+55619777700{i:02}") },
                    account(2, "20"),
                    joao(),
                    T0,
                )
                .unwrap();
            registry.insert(entry);
        }
    }

    #[test]
    fn a_claim_cannot_take_an_account_past_its_key_limit() {
        // Opening: an account already at the limit cannot claim a key into it.
        let (mut registry, mut claims, key) = setup();
        fill_claimers_account(&mut registry, PERSON_KEYS_MAX, 0);
        let full = Err(ClaimError::Directory(DirectoryError::TooManyKeys { max: PERSON_KEYS_MAX }));
        assert_eq!(open(&mut claims, &registry, ClaimKind::Portability, &key, 2, maria()), full);

        // Completing: the account filled up while the claim was open.
        let (mut registry, mut claims, key) = setup();
        fill_claimers_account(&mut registry, PERSON_KEYS_MAX - 1, 0);
        let id = open(&mut claims, &registry, ClaimKind::Portability, &key, 2, maria()).unwrap();
        assert_eq!(act(&mut claims, 1, id, ClaimAction::Confirm, T0 + 1), Ok(ClaimStatus::Confirmed));
        fill_claimers_account(&mut registry, 1, PERSON_KEYS_MAX);
        let claim = claims.check_action(pid(2), id, ClaimAction::Complete, T0 + 2).unwrap();
        assert_eq!(Claims::completion(&claim, &registry, T0 + 2).map(|_| ()), full.map(|_: u64| ()));
        // With a place freed, the same completion goes through.
        let freed = registry.entries_of(pid(2))[0].key.clone();
        registry.remove(&freed);
        assert!(Claims::completion(&claim, &registry, T0 + 2).is_ok());
    }

    #[test]
    fn lapsed_windows_resolve_as_the_rules_say() {
        let (registry, mut claims, key) = setup();
        let ownership = open(&mut claims, &registry, ClaimKind::Ownership, &key, 2, joao()).unwrap();
        assert!(claims.lapsed(T0 + 7 * DAY - 1).is_empty());
        let lapsed = claims.lapsed(T0 + 7 * DAY);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].status, ClaimStatus::Confirmed, "the holder did not defend the key");
        for c in lapsed {
            claims.store(c);
        }
        assert_eq!(claims.get(ownership).unwrap().status, ClaimStatus::Confirmed);
        // The claimer gives up: a portability claim can follow, and lapse cancelled.
        act(&mut claims, 2, ownership, ClaimAction::Cancel, T0 + 8 * DAY).unwrap();
        let portability = open(&mut claims, &registry, ClaimKind::Portability, &key, 3, maria()).unwrap();
        let lapsed = claims.lapsed(T0 + 8 * DAY);
        assert_eq!(lapsed.len(), 1);
        assert_eq!((lapsed[0].id, lapsed[0].status), (portability, ClaimStatus::Cancelled));
    }

    #[test]
    fn what_cannot_be_claimed() {
        let (mut registry, mut claims, key) = setup();
        let random = registry.check_create(pid(1), NewKey::Random([7; 16]), account(1, "10"), maria(), T0).unwrap();
        let cpf = registry
            .check_create(
                pid(1),
                NewKey::Chosen { kind: KeyType::PersonId, value: "52998224725".into() },
                account(1, "10"),
                maria(),
                T0,
            )
            .unwrap();
        registry.insert(random.clone());
        registry.insert(cpf.clone());
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Ownership, &random.key, 2, joao()),
            Err(ClaimError::RandomKey)
        );
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Portability, &random.key, 2, maria()),
            Err(ClaimError::RandomKey)
        );
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Ownership, &cpf.key, 2, joao()),
            Err(ClaimError::NationalIdOwnership)
        );
        assert!(open(&mut claims, &registry, ClaimKind::Portability, &cpf.key, 2, maria()).is_ok());
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Portability, &key, 2, joao()),
            Err(ClaimError::PortabilityOwner)
        );
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Portability, &key, 1, maria()),
            Err(ClaimError::AlreadyHeld)
        );
        open(&mut claims, &registry, ClaimKind::Ownership, &key, 2, joao()).unwrap();
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Ownership, &key, 3, joao()),
            Err(ClaimError::ClaimInProgress)
        );
        let missing = keys::parse(&Brazil, KeyType::Email, "nobody@example.com").unwrap();
        assert_eq!(
            open(&mut claims, &registry, ClaimKind::Ownership, &missing, 2, joao()),
            Err(ClaimError::Directory(DirectoryError::NotFound))
        );
    }

    #[test]
    fn final_claims_accept_nothing() {
        let (registry, mut claims, key) = setup();
        let id = open(&mut claims, &registry, ClaimKind::Ownership, &key, 2, joao()).unwrap();
        act(&mut claims, 1, id, ClaimAction::Cancel, T0).unwrap();
        for action in [ClaimAction::Acknowledge, ClaimAction::Confirm, ClaimAction::Cancel, ClaimAction::Complete] {
            assert_eq!(act(&mut claims, 1, id, action, T0), Err(ClaimError::WrongStatus(ClaimStatus::Cancelled)));
        }
        assert!(claims.lapsed(T0 + 30 * DAY).is_empty());
    }
}
