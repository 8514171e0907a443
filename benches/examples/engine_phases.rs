//! Where the engine's time goes per payment, phase by phase, as the
//! transfer table grows (a companion to the criterion `engine` bench, for
//! profiling: `perf record` this instead of criterion's analysis).
//!
//! `cargo run --release -p ponte-benches --example engine_phases -- [PAYMENTS] [TRANSFERS_CAPACITY]`

use ponte_ledger::Output;
use std::time::{Duration, Instant};

// As in the `ponte` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let total: usize = std::env::args().nth(1).map_or(5_000_000, |a| a.parse().expect("PAYMENTS: a number"));
    let transfers_capacity: u64 =
        std::env::args().nth(2).map_or(0, |a| a.parse().expect("TRANSFERS_CAPACITY: a number"));
    let built = Instant::now();
    let mut engine = ponte_benches::bench_engine(transfers_capacity);
    println!("engine built for {transfers_capacity} transfers in {:.2} s", built.elapsed().as_secs_f64());
    let mut out = Output::default();
    let (mut submit, mut answer, mut clear, mut expire) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut counter = 0_u64;
    let mut now = ponte_benches::ENGINE_NOW;
    let started = Instant::now();
    let mut done = 0;
    while done < total {
        let (submits, answers) = ponte_benches::payment_batch(&mut counter);
        let t0 = Instant::now();
        out.clear();
        let t1 = Instant::now();
        now += 1_000;
        engine.expire(now, &mut out);
        let t2 = Instant::now();
        ponte_benches::execute_all(&mut engine, now, submits, &mut out);
        let t3 = Instant::now();
        ponte_benches::execute_all(&mut engine, now, answers, &mut out);
        let t4 = Instant::now();
        clear += t1 - t0;
        expire += t2 - t1;
        submit += t3 - t2;
        answer += t4 - t3;
        done += ponte_benches::ENGINE_BATCH;
    }
    println!("transfer record: {} bytes", std::mem::size_of::<ponte_ledger::Transfer>());
    let per = |d: Duration| d.as_nanos() as f64 / done as f64;
    let engine_time = clear + expire + submit + answer;
    println!(
        "{done} payments: {:.0} payments/s in the engine ({:.2} s wall incl. order building); ns per payment: submit {:.0}, answer {:.0}, expire {:.0}, output drop {:.0}",
        done as f64 / engine_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        per(submit),
        per(answer),
        per(expire),
        per(clear)
    );
}
