//! What a settlement cycle's report costs as the engine's history grows.
//! The report (and a participant's `CycleTransfers`) is built on the engine
//! thread, so its time is a pause for every payment behind it.
//!
//! `cargo run --release -p ponte-benches --example cycle_report -- [HISTORY_PAYMENTS] [CYCLE_PAYMENTS]`
//!
//! Settles HISTORY_PAYMENTS in cycle 1 and CYCLE_PAYMENTS in cycle 2, closes
//! both, then times each report: the engine thread's part (finding the
//! movements) and the part the switch does off it (sorting, netting,
//! hashing).

use ponte_ledger::{Output, op};
use std::time::Instant;

// As in the `ponte` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let arg = |n: usize, default: usize| {
        std::env::args().nth(n).map_or(default, |a| a.parse().expect("a number of payments"))
    };
    let (history, cycle) = (arg(1, 5_000_000), arg(2, 100_000));
    let mut engine = ponte_benches::bench_engine((history + cycle + 2 * ponte_benches::ENGINE_BATCH) as u64);
    let mut out = Output::default();
    let mut counter = 0_u64;
    let mut now = ponte_benches::ENGINE_NOW;
    for payments in [history, cycle] {
        let mut done = 0;
        while done < payments {
            let (submits, answers) = ponte_benches::payment_batch(&mut counter);
            now += 1_000;
            out.clear();
            ponte_benches::execute_all(&mut engine, now, submits, &mut out);
            ponte_benches::execute_all(&mut engine, now, answers, &mut out);
            done += ponte_benches::ENGINE_BATCH;
        }
        engine.execute(now, op::CloseCycle, &mut out);
    }
    println!("{} transfers held", engine.transfer_count());
    let caller = ponte_domain::ParticipantId::new(10_000_001).expect("a participant code");
    for id in [2, 1] {
        // What the engine thread does (a pause for the payments behind it)...
        let started = Instant::now();
        let Ok((header, movements, _)) = engine.execute(now, op::CycleMovements { id }, &mut out) else {
            panic!("the movements of a closed cycle")
        };
        let on_engine = started.elapsed();
        let count = movements.len();
        // ...and what the switch then does on a blocking thread.
        let started = Instant::now();
        let report = ponte_settlement::report::build(header, movements).expect("a cycle nets");
        let off_engine = started.elapsed();
        let started = Instant::now();
        let Ok((own, _)) = engine.execute(now, op::CycleTransfers { caller, id, after: None, limit: 10_000 }, &mut out)
        else {
            panic!("cycle transfers of a closed cycle")
        };
        println!(
            "cycle {id}: {count} movements; on the engine thread {:.1} ms, the report built off it in {:.1} ms ({} netted); the first page of one participant's transfers ({} of them) {:.1} ms",
            on_engine.as_secs_f64() * 1e3,
            off_engine.as_secs_f64() * 1e3,
            report.netting.movements,
            own.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}
