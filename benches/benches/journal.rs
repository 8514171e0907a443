//! The journal's group commit: events made durable per second, each group
//! one fsync, on the embedded store.
//!
//! `cargo bench -p ponte-benches --bench journal`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ponte_switch::store::redb::Journal;

fn journal_group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.redb")).unwrap();
    // One record per engine batch; an engine batch of 512 payment events of
    // ~140 bytes each (the size of a Reserved event with a short remittance).
    let record = vec![0x5a_u8; 512 * 140];
    let mut group = c.benchmark_group("journal");
    for records_per_fsync in [1_usize, 8] {
        group.throughput(Throughput::Elements((512 * records_per_fsync) as u64));
        group.bench_function(format!("append_{}_events_per_fsync", 512 * records_per_fsync), |b| {
            b.iter(|| journal.append(std::iter::repeat_n(record.as_slice(), records_per_fsync)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, journal_group_commit);
criterion_main!(benches);
