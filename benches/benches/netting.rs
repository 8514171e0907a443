//! Netting a large settlement cycle: one million movements over 20 participants.
//!
//! `cargo bench -p ponte-benches --bench netting`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ponte_domain::{Amount, ParticipantId};
use ponte_settlement::{Movement, net};

const MOVEMENTS: u64 = 1_000_000;

fn netting(c: &mut Criterion) {
    let pid = |i: u64| ParticipantId::new(10_000_001 + (i % 20) as u32).unwrap();
    let movements: Vec<Movement> = (0..MOVEMENTS)
        .map(|i| Movement {
            payer: pid(i),
            payee: pid(i + 1 + i / 20 % 19),
            amount: Amount::from_minor(1_00 + (i % 50_000) as i64),
        })
        .collect();
    let mut group = c.benchmark_group("netting");
    group.throughput(Throughput::Elements(MOVEMENTS));
    group.sample_size(20);
    group.bench_function("net_1m_movements_20_participants", |b| {
        b.iter(|| {
            let netting = net(movements.iter().copied()).unwrap();
            netting.instructions().len()
        })
    });
    group.finish();
}

criterion_group!(benches, netting);
criterion_main!(benches);
