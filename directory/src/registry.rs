//! Directory entries and the rules on them.
//!
//! An entry maps a key to an account at a participant and the account's
//! owner. Only the participant holding an entry may change or delete it; a
//! person's account may hold at most 5 keys and a business's 20; a national
//! id key must be its owner's own id. Lookups return the account and a
//! masked owner name. Each participant can reconcile its cache against the
//! directory with a digest (XOR of per-entry hashes) and the full list.

use crate::keys::{self, CountryProfile, Key, KeyError, KeyType};
use crate::sharded::ShardedMap;
use ponte_domain::{Account, ParticipantId, TimestampMs};
use std::collections::{BTreeSet, HashMap};

/// Keys one person's account may hold.
pub const PERSON_KEYS_MAX: u32 = 5;
/// Keys one business's account may hold.
pub const BUSINESS_KEYS_MAX: u32 = 20;
/// Longest owner name, in characters.
pub const OWNER_NAME_LEN_MAX: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OwnerKind {
    Person,
    Business,
}

/// Who owns the account behind a key. Personal data: `Debug` masks it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub kind: OwnerKind,
    /// Canonical national id (person or business id).
    pub id: String,
    pub name: String,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Owner({:?}, {}, {})", self.kind, keys::mask(&self.id), mask_name(&self.name))
    }
}

/// A name as lookups show it: the first word, then initials ("Maria S. d. S.").
pub fn mask_name(name: &str) -> String {
    let mut words = name.split_whitespace();
    let mut masked = words.next().unwrap_or_default().to_owned();
    for word in words {
        if let Some(first) = word.chars().next() {
            masked.push(' ');
            masked.push(first);
            masked.push('.');
        }
    }
    masked
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub key: Key,
    pub account: Account,
    pub owner: Owner,
    pub created_at: TimestampMs,
}

/// What a lookup shows: the account, and the owner masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupView {
    pub key: Key,
    pub account: Account,
    pub owner_kind: OwnerKind,
    pub owner_name_masked: String,
    /// The owner's id masked (the payer's app shows it to confirm the payee).
    pub owner_id_masked: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid key: {0}")]
    InvalidKey(KeyError),
    #[error("invalid owner id: {0}")]
    InvalidOwnerId(KeyError),
    #[error("a national id key must be the owner's own id (and of the owner's kind)")]
    OwnerIdMismatch,
    #[error("owner name must be 1 to {OWNER_NAME_LEN_MAX} characters")]
    OwnerName,
    #[error("the account must be at the participant registering the key")]
    AccountElsewhere,
    #[error("the key is already registered (an ownership or portability claim can move it)")]
    KeyExists,
    #[error("no such key")]
    NotFound,
    #[error("only the participant holding the key may change it")]
    NotHolder,
    #[error("the account already holds {max} keys, the most allowed")]
    TooManyKeys { max: u32 },
}

/// The directory's entries. Pure: no I/O, no clock.
pub struct Registry {
    profile: Box<dyn CountryProfile>,
    entries: ShardedMap<Key, Entry>,
    keys_per_account: ShardedMap<Account, u32>,
    /// What each participant holds, kept as entries come and go, so that
    /// listing one participant's keys and their digest does not read the
    /// whole directory (a participant's cache check runs on the engine
    /// thread: at a million keys the scan paused payments ~100 ms).
    held: HashMap<ParticipantId, Held>,
}

/// One participant's keys, in key order, and the XOR of their entry hashes.
#[derive(Debug, Default)]
struct Held {
    keys: BTreeSet<Key>,
    digest: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("entries", &self.entries.len()).finish_non_exhaustive()
    }
}

/// A request to register a key: a key to parse, or a random one to make.
#[derive(Debug, Clone)]
pub enum NewKey {
    Chosen {
        kind: KeyType,
        value: String,
    },
    /// 16 random bytes supplied by the caller (the directory stays deterministic).
    Random([u8; 16]),
}

impl Registry {
    pub fn new(profile: Box<dyn CountryProfile>) -> Registry {
        Registry {
            profile,
            entries: ShardedMap::default(),
            keys_per_account: ShardedMap::default(),
            held: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn profile(&self) -> &dyn CountryProfile {
        &*self.profile
    }

    /// Validates a registration without changing anything; returns the
    /// entry that [`Registry::insert`] would add.
    pub fn check_create(
        &self,
        caller: ParticipantId,
        key: NewKey,
        account: Account,
        owner: Owner,
        now: TimestampMs,
    ) -> Result<Entry, DirectoryError> {
        if account.participant != caller {
            return Err(DirectoryError::AccountElsewhere);
        }
        let owner = self.check_owner(owner)?;
        let key = match key {
            NewKey::Chosen { kind, value } => {
                keys::parse(&*self.profile, kind, &value).map_err(DirectoryError::InvalidKey)?
            }
            NewKey::Random(bytes) => keys::random_key(bytes),
        };
        let own_id_kind = match key.kind() {
            KeyType::PersonId => Some(OwnerKind::Person),
            KeyType::BusinessId => Some(OwnerKind::Business),
            _ => None,
        };
        if let Some(kind) = own_id_kind
            && (owner.kind != kind || owner.id != key.value())
        {
            return Err(DirectoryError::OwnerIdMismatch);
        }
        if self.entries.contains_key(&key) {
            return Err(DirectoryError::KeyExists);
        }
        self.check_room(&key, account, owner.kind)?;
        Ok(Entry { key, account, owner, created_at: now })
    }

    /// Checks that `key` may be on `account` for an owner of `kind`: the
    /// account holds it already, or has room for one more (at most
    /// [`PERSON_KEYS_MAX`] or [`BUSINESS_KEYS_MAX`] per account), however
    /// the key arrives: registered, moved, or won by a claim.
    pub fn check_room(&self, key: &Key, account: Account, kind: OwnerKind) -> Result<(), DirectoryError> {
        if self.entries.get(key).is_some_and(|entry| entry.account == account) {
            return Ok(());
        }
        let max = match kind {
            OwnerKind::Person => PERSON_KEYS_MAX,
            OwnerKind::Business => BUSINESS_KEYS_MAX,
        };
        if self.keys_per_account.get(&account).copied().unwrap_or(0) >= max {
            return Err(DirectoryError::TooManyKeys { max });
        }
        Ok(())
    }

    /// Checks an owner and puts its id in canonical form.
    pub fn check_owner(&self, owner: Owner) -> Result<Owner, DirectoryError> {
        let name = owner.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > OWNER_NAME_LEN_MAX || name.chars().any(char::is_control) {
            return Err(DirectoryError::OwnerName);
        }
        let id = match owner.kind {
            OwnerKind::Person => self.profile.person_id(&owner.id),
            OwnerKind::Business => self.profile.business_id(&owner.id),
        }
        .map_err(DirectoryError::InvalidOwnerId)?;
        Ok(Owner { kind: owner.kind, id, name })
    }

    /// Adds a checked entry. Also used on replay.
    ///
    /// # Panics
    /// If the key exists: a journal that registers a key twice is corrupt.
    pub fn insert(&mut self, entry: Entry) {
        *self.keys_per_account.get_or_default(entry.account) += 1;
        let held = self.held.entry(entry.account.participant).or_default();
        held.digest ^= entry_hash(&entry);
        held.keys.insert(entry.key.clone());
        let previous = self.entries.insert(entry.key.clone(), entry);
        assert!(previous.is_none(), "key registered twice");
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Checks that `caller` holds `key`.
    pub fn check_holder(&self, caller: ParticipantId, key: &Key) -> Result<&Entry, DirectoryError> {
        let entry = self.entries.get(key).ok_or(DirectoryError::NotFound)?;
        if entry.account.participant != caller {
            // Not NotFound: the caller learns only that it cannot touch it.
            return Err(DirectoryError::NotHolder);
        }
        Ok(entry)
    }

    /// Removes an entry. Also used on replay.
    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        if let Some(count) = self.keys_per_account.get_mut(&entry.account) {
            *count -= 1;
            if *count == 0 {
                self.keys_per_account.remove(&entry.account);
            }
        }
        if let Some(held) = self.held.get_mut(&entry.account.participant) {
            held.digest ^= entry_hash(&entry);
            held.keys.remove(key);
            if held.keys.is_empty() {
                self.held.remove(&entry.account.participant);
            }
        }
        Some(entry)
    }

    /// Checks moving `key` to another account of the same holder.
    pub fn check_move(&self, caller: ParticipantId, key: &Key, account: Account) -> Result<(), DirectoryError> {
        let entry = self.check_holder(caller, key)?;
        if account.participant != caller {
            return Err(DirectoryError::AccountElsewhere);
        }
        self.check_room(key, account, entry.owner.kind)
    }

    /// Moves a key to another account. Also used on replay.
    pub fn set_account(&mut self, key: &Key, account: Account) {
        if let Some(mut entry) = self.remove(key) {
            entry.account = account;
            self.insert(entry);
        }
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// What a payer's participant sees of a key.
    pub fn lookup(&self, key: &Key) -> Option<LookupView> {
        let entry = self.entries.get(key)?;
        Some(LookupView {
            key: entry.key.clone(),
            account: entry.account,
            owner_kind: entry.owner.kind,
            owner_name_masked: mask_name(&entry.owner.name),
            owner_id_masked: keys::mask(&entry.owner.id),
        })
    }

    /// The entries a participant holds, in key order.
    pub fn entries_of(&self, participant: ParticipantId) -> Vec<&Entry> {
        self.held
            .get(&participant)
            .map(|held| held.keys.iter().map(|key| self.entries.get(key).expect("a held key has its entry")).collect())
            .unwrap_or_default()
    }

    /// A page of the entries a participant holds, in key order: at most
    /// `limit` after `after`; and how many it holds in all.
    pub fn entries_of_page(
        &self,
        participant: ParticipantId,
        after: Option<&Key>,
        limit: usize,
    ) -> (Vec<&Entry>, usize) {
        use std::ops::Bound;
        let Some(held) = self.held.get(&participant) else { return (Vec::new(), 0) };
        let start = after.map_or(Bound::Unbounded, |key| Bound::Excluded(key.clone()));
        let page = held
            .keys
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|key| self.entries.get(key).expect("a held key has its entry"))
            .collect();
        (page, held.keys.len())
    }

    /// XOR of the hashes of the entries a participant holds: equal digests
    /// mean (with overwhelming probability) equal sets of entries.
    pub fn digest_of(&self, participant: ParticipantId) -> u64 {
        self.held.get(&participant).map_or(0, |held| held.digest)
    }
}

/// The hash a participant computes for each entry of its cache to compare
/// digests: xxh3-64 of the key type, key, branch, account number and type,
/// each length-prefixed. Owner data is left out so the digest carries none.
pub fn entry_hash(entry: &Entry) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let branch = entry.account.branch_text();
    for part in [
        entry.key.kind().as_str(),
        entry.key.value(),
        branch.as_str(),
        entry.account.number(),
        entry.account.kind.as_str(),
    ] {
        hasher.update(&(part.len() as u32).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Brazil;
    use ponte_domain::AccountType;

    const T0: TimestampMs = 1_795_730_100_000;
    const CPF: &str = "52998224725";
    const CNPJ: &str = "11222333000181";

    fn pid(code: u32) -> ParticipantId {
        ParticipantId::new(code).unwrap()
    }

    fn account(code: u32, number: &str) -> Account {
        Account::new(pid(code), "1", number, AccountType::Checking).unwrap()
    }

    fn person() -> Owner {
        Owner { kind: OwnerKind::Person, id: "529.982.247-25".into(), name: "Maria Souza da Silva".into() }
    }

    fn business() -> Owner {
        Owner { kind: OwnerKind::Business, id: CNPJ.into(), name: "Padaria Boa Vista Ltda".into() }
    }

    fn chosen(kind: KeyType, value: &str) -> NewKey {
        NewKey::Chosen { kind, value: value.into() }
    }

    fn create(
        r: &mut Registry,
        caller: u32,
        key: NewKey,
        account: Account,
        owner: Owner,
    ) -> Result<Entry, DirectoryError> {
        let entry = r.check_create(pid(caller), key, account, owner, T0)?;
        r.insert(entry.clone());
        Ok(entry)
    }

    #[test]
    fn create_lookup_delete() {
        let mut r = Registry::new(Box::new(Brazil));
        let entry =
            create(&mut r, 1, chosen(KeyType::Email, "Maria@Example.com"), account(1, "100"), person()).unwrap();
        assert_eq!(entry.key.value(), "maria@example.com");
        assert_eq!(entry.owner.id, CPF, "owner ids are canonical");
        let key = keys::parse(&Brazil, KeyType::Email, "maria@example.com").unwrap();
        let view = r.lookup(&key).unwrap();
        assert_eq!(view.owner_name_masked, "Maria S. d. S.");
        assert_eq!(view.account, account(1, "100"));
        assert_eq!(r.check_holder(pid(2), &key).unwrap_err(), DirectoryError::NotHolder);
        assert!(r.check_holder(pid(1), &key).is_ok());
        assert!(r.remove(&key).is_some());
        assert!(r.lookup(&key).is_none());
    }

    #[test]
    fn one_real_number_registers_once_however_it_is_written() {
        // The issue found: the same number with a trunk prefix after the
        // country code was a second key, held at another participant.
        let mut r = Registry::new(Box::new(Brazil));
        create(&mut r, 1, chosen(KeyType::Phone, "+5561988880000"), account(1, "100"), person()).unwrap();
        for (caller, spelling) in [(2, "+55061988880000"), (3, "+55 (61) 98888-0000"), (2, " +55 0 61 9 8888 0000 ")] {
            assert_eq!(
                r.check_create(pid(caller), chosen(KeyType::Phone, spelling), account(caller, "7"), person(), T0),
                Err(DirectoryError::KeyExists),
                "{spelling:?}"
            );
            let key = keys::parse(&Brazil, KeyType::Phone, spelling).unwrap();
            assert_eq!(r.lookup(&key).unwrap().account, account(1, "100"), "lookups of {spelling:?} find the one key");
        }
        // Emails and random keys alike: one key whatever the case.
        create(&mut r, 1, chosen(KeyType::Email, "maria@example.com"), account(1, "100"), person()).unwrap();
        assert_eq!(
            r.check_create(pid(2), chosen(KeyType::Email, " MARIA@Example.COM"), account(2, "7"), person(), T0),
            Err(DirectoryError::KeyExists)
        );
    }

    #[test]
    fn national_id_keys_must_be_the_owners_own() {
        let mut r = Registry::new(Box::new(Brazil));
        assert!(create(&mut r, 1, chosen(KeyType::PersonId, CPF), account(1, "100"), person()).is_ok());
        let other = Owner { id: "111.444.777-35".into(), ..person() };
        assert_eq!(
            r.check_create(pid(1), chosen(KeyType::PersonId, "11144477735"), account(1, "101"), person(), T0),
            Err(DirectoryError::OwnerIdMismatch)
        );
        assert_eq!(
            r.check_create(pid(1), chosen(KeyType::BusinessId, CNPJ), account(1, "101"), other, T0),
            Err(DirectoryError::OwnerIdMismatch),
            "a person cannot register a business id"
        );
        assert!(create(&mut r, 1, chosen(KeyType::BusinessId, CNPJ), account(1, "200"), business()).is_ok());
        let bad_owner = Owner { id: "52998224724".into(), ..person() };
        assert!(matches!(
            r.check_create(pid(1), chosen(KeyType::Phone, "+5561988880000"), account(1, "100"), bad_owner, T0),
            Err(DirectoryError::InvalidOwnerId(_))
        ));
    }

    #[test]
    fn keys_per_account_are_limited() {
        let mut r = Registry::new(Box::new(Brazil));
        for i in 0..PERSON_KEYS_MAX {
            create(&mut r, 1, NewKey::Random([i as u8; 16]), account(1, "100"), person()).unwrap();
        }
        assert_eq!(
            r.check_create(pid(1), NewKey::Random([99; 16]), account(1, "100"), person(), T0),
            Err(DirectoryError::TooManyKeys { max: 5 })
        );
        for i in 0..BUSINESS_KEYS_MAX {
            create(&mut r, 1, NewKey::Random([100 + i as u8; 16]), account(1, "200"), business()).unwrap();
        }
        assert_eq!(
            r.check_create(pid(1), NewKey::Random([200; 16]), account(1, "200"), business(), T0),
            Err(DirectoryError::TooManyKeys { max: 20 })
        );
        // Deleting frees a place.
        let key = keys::random_key([0; 16]);
        r.remove(&key).unwrap();
        assert!(r.check_create(pid(1), NewKey::Random([99; 16]), account(1, "100"), person(), T0).is_ok());
    }

    #[test]
    fn only_own_accounts_and_new_keys() {
        let mut r = Registry::new(Box::new(Brazil));
        assert_eq!(
            r.check_create(pid(1), chosen(KeyType::Phone, "+5561988880000"), account(2, "100"), person(), T0),
            Err(DirectoryError::AccountElsewhere)
        );
        create(&mut r, 1, chosen(KeyType::Phone, "+5561988880000"), account(1, "100"), person()).unwrap();
        assert_eq!(
            r.check_create(pid(2), chosen(KeyType::Phone, "+5561988880000"), account(2, "100"), person(), T0),
            Err(DirectoryError::KeyExists)
        );
        let blank = Owner { name: "  ".into(), ..person() };
        assert_eq!(
            r.check_create(pid(1), NewKey::Random([1; 16]), account(1, "1"), blank, T0),
            Err(DirectoryError::OwnerName)
        );
    }

    #[test]
    fn moving_a_key_between_accounts_of_its_holder() {
        let mut r = Registry::new(Box::new(Brazil));
        let entry = create(&mut r, 1, chosen(KeyType::Email, "a@b.co"), account(1, "100"), person()).unwrap();
        assert_eq!(r.check_move(pid(2), &entry.key, account(2, "1")), Err(DirectoryError::NotHolder));
        assert_eq!(r.check_move(pid(1), &entry.key, account(2, "1")), Err(DirectoryError::AccountElsewhere));
        r.check_move(pid(1), &entry.key, account(1, "300")).unwrap();
        r.set_account(&entry.key, account(1, "300"));
        assert_eq!(r.get(&entry.key).unwrap().account, account(1, "300"));
    }

    #[test]
    fn digests_reconcile_a_participants_cache() {
        let mut r = Registry::new(Box::new(Brazil));
        let mut cache = Vec::new();
        for i in 0..10 {
            cache.push(
                create(&mut r, 1, NewKey::Random([i; 16]), account(1, &format!("{}", 100 + i / 5)), person()).unwrap(),
            );
        }
        create(&mut r, 2, NewKey::Random([50; 16]), account(2, "1"), person()).unwrap();
        let ours = cache.iter().map(entry_hash).fold(0, |a, h| a ^ h);
        assert_eq!(r.digest_of(pid(1)), ours);
        assert_eq!(r.entries_of(pid(1)).len(), 10);
        // A cache missing one entry no longer matches.
        let stale = cache[1..].iter().map(entry_hash).fold(0, |a, h| a ^ h);
        assert_ne!(r.digest_of(pid(1)), stale);
    }

    #[test]
    fn debug_output_masks_personal_data() {
        let mut r = Registry::new(Box::new(Brazil));
        let entry =
            create(&mut r, 1, chosen(KeyType::Email, "maria.souza@example.com"), account(1, "100"), person()).unwrap();
        let shown = format!("{entry:?}");
        for secret in ["maria.souza@example.com", CPF, "Souza", "Silva"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    proptest::proptest! {
        /// Each participant's list and digest, kept as entries come and go,
        /// equal what reading the whole directory gives, through
        /// registrations, deletions and moves.
        #[test]
        fn held_keys_and_digests_follow_every_change(ops in proptest::collection::vec((0_u8..3, 0_u32..12, 1_u32..=3, 0_u32..3), 1..200)) {
            let mut r = Registry::new(Box::new(Brazil));
            for (op, phone, holder, number) in ops {
                let key = keys::parse(r.profile(), KeyType::Phone, &format!("+556198888{phone:04}")).unwrap();
                let on = account(holder, &format!("{}", 100 + number));
                match op {
                    0 => {
                        let _ = create(&mut r, holder, chosen(KeyType::Phone, &format!("+556198888{phone:04}")), on, person());
                    }
                    1 => {
                        if r.check_holder(pid(holder), &key).is_ok() {
                            r.remove(&key);
                        }
                    }
                    _ => {
                        if r.check_move(pid(holder), &key, on).is_ok() {
                            r.set_account(&key, on);
                        }
                    }
                }
                for code in 1..=3 {
                    let mut scanned: Vec<&Entry> = r.entries.values().filter(|e| e.account.participant == pid(code)).collect();
                    scanned.sort_by(|a, b| a.key.cmp(&b.key));
                    let digest = scanned.iter().map(|e| entry_hash(e)).fold(0, |a, h| a ^ h);
                    proptest::prop_assert_eq!(r.entries_of(pid(code)), scanned);
                    proptest::prop_assert_eq!(r.digest_of(pid(code)), digest);
                }
            }
        }
    }
}
