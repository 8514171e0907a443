//! Sizing: bytes on disk per settled payment and engine memory per transfer.
//!
//! Runs the real engine over N payments (submitted, then accepted), appends
//! the journal output to a real journal file in engine-sized records, and
//! reports the file size and the process's resident memory growth per
//! payment; then the same for N directory entries.
//! `cargo run --release -p ponte-benches --example sizing -- [N]`

use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId};
use ponte_ledger::{Decision, Engine, EngineConfig, Output, PaymentOrder, op};
use ponte_switch::store::redb::Journal;

const NOW: i64 = 1_795_730_100_000;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    // Memory first, without the journal (whose page cache would count as
    // resident memory), then the journal file on a fresh engine.
    let (memory, _) = run(n, false);
    let (_, (journal_bytes, file)) = run(n, true);
    println!("{n} settled payments (remittance of 15 characters):");
    println!("  encoded events: {:.0} bytes per payment", journal_bytes as f64 / n as f64);
    println!("  journal file:   {:.0} bytes per payment ({} MB)", file as f64 / n as f64, file / 1_000_000);
    println!("  engine memory:  {:.0} bytes per payment (resident growth)", memory as f64 / n as f64);
    let before = resident_bytes();
    let (registry, keys) = ponte_benches::directory_with_phone_keys(n);
    let after = resident_bytes();
    println!(
        "{} directory entries (phone keys, 20-character owner names): {:.0} bytes per entry (resident growth)",
        registry.len(),
        after.saturating_sub(before) as f64 / n as f64
            - std::mem::size_of::<ponte_directory::keys::Key>() as f64
            - keys.first().map_or(0.0, |k| k.value().len() as f64)
    );
}

/// Returns (resident growth, (encoded journal bytes, journal file size)).
fn run(n: u64, with_journal: bool) -> (u64, (u64, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.redb")).unwrap();
    let mut engine = Engine::new(EngineConfig { payee_inflight_max: u32::MAX, ..EngineConfig::default() });
    let pid = |i: u32| ParticipantId::new(10_000_000 + i).unwrap();
    let mut out = Output::default();
    for i in 0..20 {
        let cap = Amount::units(1_000_000_000_000);
        engine
            .execute(
                NOW,
                op::RegisterParticipant { id: pid(i), name: format!("Bank {i}"), net_debit_cap: cap },
                &mut out,
            )
            .unwrap();
        engine.execute(NOW, op::InboxOpened(pid(i)), &mut out);
    }
    journal.append([out.journal.as_slice()]).unwrap();
    let before = resident_bytes();
    let mut journal_bytes = 0_u64;
    let batch = 512;
    for start in (0..n).step_by(batch) {
        out.clear();
        let mut ids = Vec::with_capacity(batch);
        for k in start..(start + batch as u64).min(n) {
            let payer = (k % 20) as u32;
            let payee = ((k + 1 + (k / 20) % 19) % 20) as u32;
            let suffix = format!("{k:011}");
            let order = PaymentOrder {
                id: EndToEndId::from_parts(IdKind::Payment, pid(payer), NOW, suffix.as_bytes().try_into().unwrap()),
                payer: Account::new(pid(payer), "1", "12345678", AccountType::Checking).unwrap(),
                payee: Account::new(pid(payee), "1", "87654321", AccountType::Checking).unwrap(),
                amount: Amount::from_minor(1_00 + (k % 10_000) as i64),
                remittance: "invoice 2026-11".into(),
                payee_key: None,
                lookup_by: None,
            };
            ids.push((order.id, order.payee.participant));
            engine.execute(NOW, op::Submit(order), &mut out);
        }
        for (id, payee) in ids {
            engine.execute(NOW + 1, op::Answer { payee, id, decision: Decision::Accept }, &mut out);
        }
        journal_bytes += out.journal.len() as u64;
        if with_journal {
            journal.append([out.journal.as_slice()]).unwrap();
        }
    }
    let after = resident_bytes();
    drop(journal);
    let file = std::fs::metadata(dir.path().join("journal.redb")).unwrap().len();
    drop(engine);
    (after.saturating_sub(before), (journal_bytes, file))
}
