//! The engine state machine alone (no I/O), and the journal's group commit
//! (events made durable per second, each group one fsync).
//!
//! `cargo bench -p ponte-benches --bench engine`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ponte_benches::{ENGINE_BATCH, ENGINE_NOW, bench_engine, execute_all, payment_batch};
use ponte_switch::engine::Output;
use ponte_switch::journal::Journal;

// The allocator the `ponte` binary runs the engine with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Two engines: the default (the table grows as transfers arrive, paying
/// for resizes and fresh pages on the way) and one built for the run's
/// volume (`engine.transfers_capacity`, memory touched at start).
fn engine_alone(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(ENGINE_BATCH as u64));
    for (name, capacity) in
        [("submit_and_accept_10k_payments", 0), ("submit_and_accept_10k_payments_table_sized_12m", 12_000_000)]
    {
        let mut engine = bench_engine(capacity);
        let mut counter = 0;
        let mut out = Output::default();
        // The clock moves a little per batch, as it does live, so payee
        // deadlines pass and the deadline queue is drained by `expire`.
        let mut now = ENGINE_NOW;
        group.bench_function(name, |b| {
            b.iter_batched(
                || payment_batch(&mut counter),
                |(submits, answers)| {
                    out.clear();
                    now += 1_000;
                    engine.expire(now, &mut out);
                    execute_all(&mut engine, now, submits, &mut out);
                    execute_all(&mut engine, now, answers, &mut out);
                    out.journal.len()
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

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

criterion_group!(benches, engine_alone, journal_group_commit);
criterion_main!(benches);
