//! Writes a journal of engine-sized records, reopens it and times the
//! replay a restarting switch does before it serves: how long a restart
//! takes per gigabyte of journal, apart from applying the events.
//! `cargo run --release -p ponte-benches --example journal_replay -- [MEGABYTES] [RECORD_BYTES]`

use ponte_switch::store::redb::Journal;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let megabytes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let bytes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.redb");
    let records = megabytes * 1_000_000 / bytes;
    {
        let mut journal = Journal::open(&path).unwrap();
        let record: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        // Groups of four records per commit, as a loaded switch writes them.
        for _ in 0..records.div_ceil(4) {
            journal.append([record.as_slice(); 4]).unwrap();
        }
        println!(
            "wrote {} records of {bytes} bytes in {:.1} s",
            records.div_ceil(4) * 4,
            started.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let started = Instant::now();
    let journal = Journal::open(&path).unwrap();
    let mut total = 0usize;
    let count = journal
        .replay(0, |_, record| {
            total += record.len();
            Ok(())
        })
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    println!(
        "replayed {count} records, {} MB of records from a {} MB file, in {took:.2} s ({:.0} MB/s)",
        total / 1_000_000,
        size / 1_000_000,
        total as f64 / took / 1e6
    );
}
