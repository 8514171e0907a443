//! Criterion benchmarks of Ponte's hot paths; see `benches/` and BENCHMARKS.md.
//! This library holds the fixtures the benchmarks and sizing examples share.

use ponte_directory::keys::{Brazil, Key, KeyType};
use ponte_directory::registry::{NewKey, Owner, OwnerKind, Registry};
use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId};
use ponte_ledger::op::{self, Operation};
use ponte_ledger::{Decision, Engine, EngineConfig, Output, PaymentOrder};

/// Participants of the engine benchmarks.
pub const ENGINE_PARTICIPANTS: u32 = 20;
/// Payments per engine benchmark batch.
pub const ENGINE_BATCH: usize = 10_000;
/// 2026-11-26 21:55 UTC: ids and the engine clock agree.
pub const ENGINE_NOW: i64 = 1_795_730_100_000;

fn bench_pid(n: u32) -> ParticipantId {
    ParticipantId::new(10_000_000 + n).unwrap()
}

/// An engine with [`ENGINE_PARTICIPANTS`] participants, all online, limits
/// that never bind, and its transfer table built for `transfers_capacity`.
pub fn bench_engine(transfers_capacity: u64) -> Engine {
    let mut engine =
        Engine::new(EngineConfig { payee_inflight_max: u32::MAX, transfers_capacity, ..EngineConfig::default() });
    let mut out = Output::default();
    for n in 0..ENGINE_PARTICIPANTS {
        let register = op::RegisterParticipant {
            id: bench_pid(n),
            name: format!("Bank {n}"),
            net_debit_cap: Amount::units(1_000_000_000_000),
        };
        engine.execute(ENGINE_NOW, register, &mut out).expect("a fresh participant registers");
        engine.execute(ENGINE_NOW, op::InboxOpened(bench_pid(n)), &mut out);
    }
    engine
}

/// [`ENGINE_BATCH`] payment orders between distinct participants, with ids
/// stamped [`ENGINE_NOW`] (the engine accepts ids up to 24 h old, far more
/// than a benchmark runs) and numbered from `counter`.
pub fn payment_orders(counter: &mut u64) -> Vec<PaymentOrder> {
    (0..ENGINE_BATCH)
        .map(|i| {
            *counter += 1;
            let payer = (i as u32) % ENGINE_PARTICIPANTS;
            let payee =
                (payer + 1 + (i as u32 / ENGINE_PARTICIPANTS) % (ENGINE_PARTICIPANTS - 1)) % ENGINE_PARTICIPANTS;
            let suffix = format!("{:011}", *counter);
            PaymentOrder {
                id: EndToEndId::from_parts(
                    IdKind::Payment,
                    bench_pid(payer),
                    ENGINE_NOW,
                    suffix.as_bytes().try_into().unwrap(),
                ),
                payer: Account::new(bench_pid(payer), "1", "12345678", AccountType::Checking).unwrap(),
                payee: Account::new(bench_pid(payee), "1", "87654321", AccountType::Checking).unwrap(),
                amount: Amount::from_minor(1_00 + (*counter % 10_000) as i64),
                remittance: "invoice 2026-11".into(),
                payee_key: None,
                lookup_by: None,
            }
        })
        .collect()
}

/// One engine benchmark batch: [`ENGINE_BATCH`] payments submitted, and
/// their payees' acceptances (built up front, as the network would deliver
/// them).
pub fn payment_batch(counter: &mut u64) -> (Vec<op::Submit>, Vec<op::Answer>) {
    let orders = payment_orders(counter);
    let answers = orders
        .iter()
        .map(|order| op::Answer { payee: order.payee.participant, id: order.id, decision: Decision::Accept })
        .collect();
    (orders.into_iter().map(op::Submit).collect(), answers)
}

/// Executes `operations` in order as the switch's engine thread does: each
/// one's transfer prefetched [`Engine::PREFETCH_AHEAD`] operations ahead.
pub fn execute_all<O: Operation>(engine: &mut Engine, now: i64, operations: Vec<O>, out: &mut Output) {
    let mut operations = operations.into_iter();
    while let Some(operation) = operations.next() {
        if let Some(ahead) = operations.as_slice().get(Engine::PREFETCH_AHEAD - 1) {
            engine.prefetch(ahead);
        }
        engine.execute(now, operation, out);
    }
}

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
