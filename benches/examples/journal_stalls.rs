//! Appends engine-sized records to a fresh journal for a while and prints
//! the distribution of append (commit + fsync) times, to find stalls.
//! `cargo run --release -p ponte-benches --example journal_stalls -- [SECONDS] [RECORD_BYTES]`

use ponte_switch::store::redb::Journal;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let bytes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60_000);
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.redb")).unwrap();
    let record = vec![0x5a_u8; bytes];
    let mut times = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let started = Instant::now();
        journal.append([record.as_slice()]).unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let q = |f: f64| times[((times.len() as f64 * f) as usize).min(times.len() - 1)];
    let size = std::fs::metadata(dir.path().join("journal.redb")).unwrap().len();
    println!(
        "{} appends of {bytes} bytes ({:.0} MB/s): p50 {:?} p99 {:?} p99.9 {:?} max {:?}; file {} MB",
        times.len(),
        times.len() as f64 * bytes as f64 / seconds as f64 / 1e6,
        q(0.5),
        q(0.99),
        q(0.999),
        times.last().unwrap(),
        size / 1_000_000
    );
}
