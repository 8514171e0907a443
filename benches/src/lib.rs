//! Criterion benchmarks of Ponte's hot paths; see `benches/` and BENCHMARKS.md.
//! This library holds the fixtures the benchmarks and sizing examples share.

use ponte_directory::keys::{Brazil, Key, KeyType};
use ponte_directory::registry::{NewKey, Owner, OwnerKind, Registry};
use ponte_domain::{Account, AccountType, ParticipantId};

/// A valid CPF from a 9-digit base (the check digits computed here).
pub fn cpf(base: u64) -> String {
    let mut d: Vec<u32> = format!("{base:09}").bytes().map(|b| u32::from(b - b'0')).collect();
    for len in [9, 10] {
        let sum: u32 = (0..len).map(|i| d[i] * (len as u32 + 1 - i as u32)).sum();
        d.push((sum * 10) % 11 % 10);
    }
    d.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect()
}

/// A directory of `count` phone keys over 20 participants, one person per account.
pub fn directory_with_phone_keys(count: u64) -> (Registry, Vec<Key>) {
    let mut registry = Registry::new(Box::new(Brazil));
    let mut keys = Vec::with_capacity(count as usize);
    for n in 0..count {
        let participant = ParticipantId::new(10_000_001 + (n % 20) as u32).unwrap();
        let owner = Owner { kind: OwnerKind::Person, id: cpf(100_000_000 + n), name: "Maria Souza da Silva".into() };
        let account = Account::new(participant, "1", &format!("{}", 1_000_000 + n), AccountType::Checking).unwrap();
        let key = NewKey::Chosen { kind: KeyType::Phone, value: format!("+55619{n:08}") };
        let entry = registry.check_create(participant, key, account, owner, 0).unwrap();
        keys.push(entry.key.clone());
        registry.insert(entry);
    }
    (registry, keys)
}
