//! Times restoring an engine from a snapshot file a switch wrote (a
//! restart's longest step), to profile it: `cargo run --release -p
//! ponte-benches --example restore_file -- SNAPSHOT [TRANSFERS_CAPACITY]`.

use ponte_ledger::{Engine, EngineConfig};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: restore_file SNAPSHOT [TRANSFERS_CAPACITY]");
    let transfers_capacity = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let started = Instant::now();
    let bytes = std::fs::read(&path).expect("reads the snapshot");
    let read = started.elapsed();
    let started = Instant::now();
    let config = EngineConfig { transfers_capacity, ..EngineConfig::default() };
    let (engine, header) = Engine::restore(config, &bytes).expect("restores");
    let restore = started.elapsed();
    println!(
        "{} MB, {} journal records, {} transfers in the window ({} held in full): read {:.0} ms, restore {:.0} ms",
        bytes.len() / 1_000_000,
        header.journal_records,
        engine.window_count(),
        engine.transfer_count(),
        read.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3
    );
}
