//! Snapshots of an engine holding N settled payments: bytes per payment,
//! the time to write one (on the snapshot thread, never the engine's), and
//! the time a restart takes to restore it, against replaying the same
//! history from its journal records.
//! `cargo run --release -p ponte-benches --example snapshot -- [N]`

use ponte_benches::{ENGINE_BATCH, ENGINE_NOW, bench_engine, execute_all, payment_batch};
use ponte_ledger::{Engine, Output, decode_events};
use std::time::Instant;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mut engine = bench_engine(0);
    let config = engine.config().clone();
    // The journal records the switch would have written, kept to replay.
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut counter = 0;
    while counter < n {
        let (submits, answers) = payment_batch(&mut counter);
        let mut out = Output::default();
        execute_all(&mut engine, ENGINE_NOW, submits, &mut out);
        execute_all(&mut engine, ENGINE_NOW, answers, &mut out);
        records.push(std::mem::take(&mut out.journal));
    }
    let payments = counter;
    let started = Instant::now();
    let snapshot = engine.snapshot(records.len() as u64);
    let write = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (restored, _) = Engine::restore(config, &snapshot).expect("restores");
    let restore = started.elapsed().as_secs_f64();
    assert_eq!(restored.transfer_count() as u64, payments);
    drop(restored);
    let started = Instant::now();
    // The participants were registered before the records kept here.
    let mut replayed = bench_engine(0);
    for record in &records {
        for event in decode_events(record) {
            replayed.apply(&event.expect("decodes"));
        }
    }
    let replay = started.elapsed().as_secs_f64();
    let journal: usize = records.iter().map(Vec::len).sum();
    println!("{payments} settled payments ({} per engine batch):", ENGINE_BATCH);
    println!(
        "  snapshot: {:.0} bytes per payment ({} MB)",
        snapshot.len() as f64 / payments as f64,
        snapshot.len() / 1_000_000
    );
    println!("  encoded journal events: {:.0} bytes per payment", journal as f64 / payments as f64);
    println!("  snapshot encode: {write:.2} s ({:.1} M payments/s)", payments as f64 / write / 1e6);
    println!(
        "  restore (decode, rebuild indexes, check invariants): {restore:.2} s ({:.1} M payments/s)",
        payments as f64 / restore / 1e6
    );
    println!(
        "  replay of the same history from its records: {replay:.2} s ({:.1} M payments/s)",
        payments as f64 / replay / 1e6
    );
}
