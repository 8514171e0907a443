//! What a participant's `ListKeys` (its keys and their digest, to check its
//! cache against the directory) costs the engine thread, as the directory
//! grows: the call runs there, so its time is a pause for payments.
//!
//! `cargo run --release -p ponte-benches --example list_keys -- [KEYS]`
//!
//! KEYS phone keys over 20 participants; times one participant's list and
//! digest.

use ponte_domain::ParticipantId;
use std::time::Instant;

// As in the `ponte` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let keys: u64 = std::env::args().nth(1).map_or(1_000_000, |a| a.parse().expect("KEYS: a number"));
    let (registry, _) = ponte_benches::directory_with_phone_keys(keys);
    let participant = ParticipantId::new(10_000_001).expect("a participant code");
    for _ in 0..3 {
        let started = Instant::now();
        let held = registry.entries_of(participant).len();
        let list = started.elapsed();
        let started = Instant::now();
        let digest = registry.digest_of(participant);
        println!(
            "{keys} keys: one participant's {held} listed in {:.1} ms, digest {digest:016x} in {:.2} ms",
            list.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}
