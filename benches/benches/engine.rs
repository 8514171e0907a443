//! The engine state machine alone (no I/O, no async runtime: this bench
//! links only the ledger and its fixtures).
//!
//! `cargo bench -p ponte-benches --bench engine`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ponte_benches::{ENGINE_BATCH, ENGINE_NOW, bench_engine, execute_all, payment_batch};
use ponte_ledger::Output;

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

criterion_group!(benches, engine_alone);
criterion_main!(benches);
