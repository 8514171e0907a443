//! The embedded archive's write rate as its file grows, its bytes per
//! archived payment, and the time of the reads it answers.
//!
//! Writes N archived transfers (ids stamped as at 100,000 payments a second,
//! 20 participants, hourly cycles) in batches of 65,536 ops, as the archive
//! thread gathers them, printing the write rate of every million; then
//! times 10,000 lookups by end-to-end id (status, returns) and the read of
//! one whole cycle (reconcile, reports).
//! `cargo run --release -p ponte-benches --example archive_write -- [N]`

use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId, TransferState};
use ponte_ledger::{ArchiveOp, ArchivedTransfer, NumberedOp, Transfer};
use ponte_switch::store::Archive;
use std::time::{Duration, Instant};

const START: i64 = 1_795_730_100_000;
/// Payments a second the ids are stamped at.
const RATE: u64 = 100_000;
const BATCH: usize = 65_536;

fn transfer(k: u64) -> ArchivedTransfer {
    let pid = |i: u32| ParticipantId::new(10_000_000 + i).unwrap();
    let payer = (k % 20) as u32;
    let payee = ((k + 1 + (k / 20) % 19) % 20) as u32;
    let at = START + (k * 1000 / RATE) as i64;
    let suffix = format!("{k:011}");
    let transfer = Transfer {
        id: EndToEndId::from_parts(IdKind::Payment, pid(payer), at, suffix.as_bytes().try_into().unwrap()),
        payer: Account::new(pid(payer), "1", "12345678", AccountType::Checking).unwrap(),
        payee: Account::new(pid(payee), "1", "87654321", AccountType::Checking).unwrap(),
        amount: Amount::from_minor(1_00 + (k % 10_000) as i64),
        state: TransferState::Settled,
        reason: None,
        created_at: at,
        settled_at: Some(at + 2),
        deadline: 0,
        digest: 0,
        returned: Amount::ZERO,
        cycle: cycle_of(k),
    };
    ArchivedTransfer { position: k, transfer, original: None }
}

fn cycle_of(k: u64) -> u32 {
    1 + (k / (RATE * 3600)) as u32
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.redb");
    let archive = ponte_switch::store::archive_redb::EmbeddedArchive::open(&path).unwrap();
    let (mut writing, mut chunk, mut chunk_count) = (Duration::ZERO, Duration::ZERO, 0_u64);
    let mut k = 0;
    println!("writing {n} archived transfers, {BATCH} ops per transaction:");
    while k < n {
        let ops: Vec<NumberedOp> = (k..(k + BATCH as u64).min(n))
            .map(|k| NumberedOp { number: k, op: ArchiveOp::Transfer(Box::new(transfer(k))) })
            .collect();
        let started = Instant::now();
        archive.write(&ops).unwrap();
        let took = started.elapsed();
        writing += took;
        chunk += took;
        let before = k;
        k += ops.len() as u64;
        chunk_count += ops.len() as u64;
        if k / 1_000_000 != before / 1_000_000 || k == n {
            let size = std::fs::metadata(&path).unwrap().len();
            println!(
                "  {:>5.1} M written: {:>7.0} per second since the last line, {:.2} µs per payment overall, file {:.0} B per payment",
                k as f64 / 1e6,
                chunk_count as f64 / chunk.as_secs_f64(),
                writing.as_secs_f64() * 1e6 / k as f64,
                size as f64 / k as f64,
            );
            (chunk, chunk_count) = (Duration::ZERO, 0);
        }
    }
    // Lookups by id, spread over the whole archive.
    let lookups = 10_000;
    let mut latencies = Vec::with_capacity(lookups);
    for i in 0..lookups as u64 {
        let k = (i * 7_919_993) % n;
        let id = transfer(k).transfer.id;
        let started = Instant::now();
        let found = archive.transfer(&id).unwrap().expect("archived");
        latencies.push(started.elapsed());
        assert_eq!(found.transfer.position, k);
    }
    latencies.sort();
    let at = |q: f64| latencies[((lookups as f64 * q) as usize).min(lookups - 1)].as_secs_f64() * 1e6;
    println!("lookups by id: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs", at(0.5), at(0.99), at(1.0));
    // One whole cycle.
    let cycle = cycle_of(n / 2);
    let started = Instant::now();
    let mut count = 0_u64;
    archive
        .cycle(cycle, u64::MAX, &mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
    let took = started.elapsed();
    println!(
        "cycle {cycle}: {count} transfers read in {:.2} s ({:.0} per second)",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
}
