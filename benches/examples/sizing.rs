//! Sizing: bytes on disk per settled payment and engine memory per transfer.
//!
//! Runs the real engine over N payments (submitted, then accepted), appends
//! the journal output to a real journal file in engine-sized records, and
//! reports the file size and the process's resident memory growth per
//! payment; then the archive those payments go to once past the duplicate
//! window (bytes on disk per archived payment, and the engine's memory
//! after evicting them); then the memory per payment in the duplicate
//! window once full records leave for the archive (what stays is a
//! window entry), and the memory a day at Pix's record (300 M payments,
//! all inside the default 24 h window) needs; then the same for N
//! directory entries.
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
    if std::env::args().nth(2).as_deref() == Some("window") {
        println!("{}", window_bytes(n));
        return;
    }
    // Memory first, without the journal (whose page cache would count as
    // resident memory), then the journal file on a fresh engine.
    let (memory, _) = run(n, false);
    let (_, (journal_bytes, file)) = run(n, true);
    let (archive_file, held_after) = archive(n);
    // In a process of its own: memory the runs above freed would be reused.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([n.to_string(), "window".to_string()])
        .output()
        .unwrap();
    let window: f64 = String::from_utf8_lossy(&child.stdout).trim().parse().expect("the window's bytes per payment");
    println!("{n} settled payments (remittance of 15 characters):");
    println!("  encoded events: {:.0} bytes per payment", journal_bytes as f64 / n as f64);
    println!("  journal file:   {:.0} bytes per payment ({} MB)", file as f64 / n as f64, file / 1_000_000);
    println!("  engine memory:  {:.0} bytes per payment (resident growth)", memory as f64 / n as f64);
    println!(
        "  archive file:   {:.0} bytes per archived payment ({} MB; {held_after} transfers left in memory)",
        archive_file as f64 / n as f64,
        archive_file / 1_000_000
    );
    println!(
        "  in the duplicate window, its full record archived: {:.0} bytes per payment (resident growth; a 300 M window: {:.1} GB)",
        window,
        window * 300e6 / 1e9
    );
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

/// The archive file after the payments of a run pass the duplicate window
/// (every transfer evicted and written as the archive thread writes them),
/// and the transfers left in memory.
fn archive(n: u64) -> (u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut engine, _) = settle(n, None, true);
    let archive = ponte_switch::store::archive_redb::EmbeddedArchive::open(&dir.path().join("archive.redb")).unwrap();
    let past_window = NOW + engine.config().id_age_ms_max + 1;
    let (mut evicting, mut writing) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let mut gathered = Vec::new();
    loop {
        let started = std::time::Instant::now();
        let mut out = Output::default();
        engine.expire(past_window, &mut out);
        let ops = engine.take_archive_ops();
        evicting += started.elapsed();
        let done = ops.is_empty();
        gathered.extend(ops);
        // As the archive thread gathers them: up to 65,536 per transaction.
        if gathered.len() >= 65_536 || (done && !gathered.is_empty()) {
            use ponte_switch::store::Archive;
            let started = std::time::Instant::now();
            archive.write(&gathered).unwrap();
            writing += started.elapsed();
            gathered.clear();
        }
        if done {
            break;
        }
    }
    println!(
        "  eviction on the engine thread: {:.0} ns per payment; archive writes (65,536 per transaction): {:.0} ns per payment",
        evicting.as_nanos() as f64 / n as f64,
        writing.as_nanos() as f64 / n as f64
    );
    drop(archive);
    (std::fs::metadata(dir.path().join("archive.redb")).unwrap().len(), engine.transfer_count())
}

/// Resident growth per payment of an engine whose final records leave for
/// the archive as they settle (`final_record_ms` 0, the ops dropped), all
/// inside the duplicate window: what the window costs per payment.
fn window_bytes(n: u64) -> f64 {
    let before = resident_bytes();
    let (engine, _) = settle_with(n, None, Keep::WindowEntries);
    let after = resident_bytes();
    assert_eq!(engine.transfer_count(), 0, "every full record left");
    assert_eq!(engine.window_count() as u64, n);
    after.saturating_sub(before) as f64 / n as f64
}

/// Returns (resident growth, (encoded journal bytes, journal file size)).
fn run(n: u64, with_journal: bool) -> (u64, (u64, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.redb")).unwrap();
    let before = resident_bytes();
    let (engine, journal_bytes) = settle(n, with_journal.then_some(&mut journal), false);
    let after = resident_bytes();
    drop(journal);
    let file = std::fs::metadata(dir.path().join("journal.redb")).unwrap().len();
    drop(engine);
    (after.saturating_sub(before), (journal_bytes, file))
}

/// An engine that settled `n` payments (appended to `journal` if given,
/// keeping archive ops if asked), and the encoded journal bytes.
fn settle(n: u64, journal: Option<&mut Journal>, archive_ops: bool) -> (Engine, u64) {
    settle_with(n, journal, if archive_ops { Keep::ArchiveOps } else { Keep::Everything })
}

#[derive(PartialEq)]
enum Keep {
    /// No archive: every transfer stays in memory.
    Everything,
    /// Archive ops kept (nothing leaves until `expire`).
    ArchiveOps,
    /// Full records leave for the archive as soon as final (ops dropped).
    WindowEntries,
}

fn settle_with(n: u64, mut journal: Option<&mut Journal>, keep: Keep) -> (Engine, u64) {
    let final_record_ms = if keep == Keep::WindowEntries { 0 } else { EngineConfig::default().final_record_ms };
    let mut engine =
        Engine::new(EngineConfig { payee_inflight_max: u32::MAX, final_record_ms, ..EngineConfig::default() });
    if keep != Keep::Everything {
        engine.keep_archive_ops();
    }
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
    if let Some(journal) = journal.as_mut() {
        journal.append([out.journal.as_slice()]).unwrap();
    }
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
        if keep == Keep::WindowEntries {
            engine.expire(NOW + 2, &mut out);
            drop(engine.take_archive_ops());
        }
        journal_bytes += out.journal.len() as u64;
        if let Some(journal) = journal.as_mut() {
            journal.append([out.journal.as_slice()]).unwrap();
        }
    }
    (engine, journal_bytes)
}
