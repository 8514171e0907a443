//! Directory lookups in process, with one million entries.
//!
//! `cargo bench -p ponte-benches --bench directory`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ponte_benches::directory_with_phone_keys;
use ponte_directory::keys::{Brazil, Key, KeyType, parse};

const LOOKUPS: usize = 10_000;

fn lookups(c: &mut Criterion) {
    let (registry, keys) = directory_with_phone_keys(1_000_000);
    let sample: Vec<Key> = (0..LOOKUPS).map(|i| keys[(i * 7919) % keys.len()].clone()).collect();
    let missing: Vec<Key> =
        (0..LOOKUPS).map(|i| parse(&Brazil, KeyType::Phone, &format!("+55629{i:08}")).unwrap()).collect();
    let mut group = c.benchmark_group("directory");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    group.bench_function("lookup_hit_1m_entries", |b| {
        b.iter(|| sample.iter().filter_map(|k| registry.lookup(k)).count())
    });
    group.bench_function("get_hit_1m_entries", |b| {
        b.iter(|| sample.iter().filter(|k| registry.get(k).is_some()).count())
    });
    group.bench_function("lookup_miss_1m_entries", |b| {
        b.iter(|| missing.iter().filter_map(|k| registry.lookup(k)).count())
    });
    group.bench_function("parse_phone_key", |b| {
        b.iter(|| (0..LOOKUPS).filter(|i| parse(&Brazil, KeyType::Phone, &format!("+55619{i:08}")).is_ok()).count())
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
