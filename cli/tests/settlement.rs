//! Settlement over the real interface: cycles closed while payments stream,
//! each settled payment in exactly one cycle, participant reconciliation
//! files that match the central bank's report, confirmation freeing headroom.

mod common;

use common::*;
use ponte_domain::{Amount, EndToEndId, TransferState};
use ponte_sdk::{PaymentOutcome, ReportFormat};
use std::collections::{HashMap, HashSet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_cycles_under_streaming_load_puts_each_payment_in_exactly_one() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let operator = switch.operator().await;
    let (sender, mut receiver) = a.open_submit_stream().await.unwrap();
    let producer = tokio::spawn({
        let a = a.clone();
        async move {
            for _ in 0..20 {
                let batch: Vec<_> = (0..100).map(|_| payment(&a, B, "0.25")).collect();
                sender.send(&batch).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            }
        }
    });
    // Close twice while the stream runs.
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    operator.close_cycle().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    operator.close_cycle().await.unwrap();
    producer.await.unwrap();
    let mut settled = HashSet::new();
    while settled.len() < 2_000 {
        for r in receiver.next().await.expect("results").unwrap() {
            assert!(matches!(r.outcome, Ok(PaymentOutcome::Settled { .. })), "{r:?}");
            settled.insert(EndToEndId::parse(&r.end_to_end_id).unwrap());
        }
    }
    operator.close_cycle().await.unwrap();
    let cycles = operator.cycles().await.unwrap();
    assert_eq!(cycles.len(), 4, "three closed, one open");

    let mut seen: HashMap<EndToEndId, u64> = HashMap::new();
    for cycle in cycles.iter().filter(|c| c.status == ponte_sdk::CycleStatus::Closed) {
        let mine = a.cycle_transfers(cycle.id).await.unwrap();
        for t in &mine {
            assert_eq!(t.state, TransferState::Settled);
            assert!(seen.insert(t.id, cycle.id).is_none(), "{} in two cycles", t.id);
        }
        // The participant's file matches its line in the central bank's report.
        let (_, json) = operator.cycle_report(cycle.id, ReportFormat::Json).await.unwrap();
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let a_code = A.to_string();
        let line =
            report["participants"].as_array().unwrap().iter().find(|p| p["participant"].as_str() == Some(&a_code));
        let sent: Amount = mine.iter().fold(Amount::ZERO, |acc, t| acc.checked_add(t.amount).unwrap());
        match line {
            Some(line) => {
                assert_eq!(line["sent_count"].as_u64().unwrap(), mine.len() as u64);
                assert_eq!(line["sent_value"].as_str().unwrap(), sent.to_string());
            }
            None => assert!(mine.is_empty()),
        }
    }
    assert_eq!(seen.len(), settled.len(), "every settled payment is in exactly one closed cycle");
    assert!(seen.values().collect::<HashSet<_>>().len() >= 2, "the closes cut the stream");
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_cycle_reconciles_by_pages() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let (sender, mut receiver) = a.open_submit_stream().await.unwrap();
    for _ in 0..25 {
        let batch: Vec<_> = (0..100).map(|_| payment(&a, B, "0.01")).collect();
        sender.send(&batch).await.unwrap();
    }
    let mut settled = HashSet::new();
    while settled.len() < 2_500 {
        for r in receiver.next().await.expect("results").unwrap() {
            assert!(matches!(r.outcome, Ok(PaymentOutcome::Settled { .. })), "{r:?}");
            settled.insert(EndToEndId::parse(&r.end_to_end_id).unwrap());
        }
    }
    let operator = switch.operator().await;
    let cycle = operator.close_cycle().await.unwrap().id;
    // Pages of 700: 4 pages, every payment once, on both sides.
    for client in [&a, &b] {
        let paged = all_pages(client, cycle, 700).await;
        assert_eq!(paged.iter().map(|t| t.id).collect::<HashSet<_>>(), settled);
        assert_eq!(paged.len(), 2_500);
    }
    // Page sizes as AIP-158 reads them: 0 is 1,000; over the most is the most.
    let first = a.cycle_transfers_page(cycle, 0, "").await.unwrap();
    assert_eq!(first.transfers.len(), 1_000);
    let token = first.next_page_token.unwrap();
    let big = a.cycle_transfers_page(cycle, u32::MAX, "").await.unwrap();
    assert_eq!((big.transfers.len(), big.next_page_token), (2_500, None));
    // The SDK's whole read follows pages.
    assert_eq!(a.cycle_transfers(cycle).await.unwrap().len(), 2_500);
    // So does the CLI's reconcile, with its totals at the end.
    let reconcile = |who: u32, format: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ponte"))
            .args(["reconcile", &cycle.to_string(), "--as", &who.to_string(), "--format", format])
            .args(["--page-size", "700", "--endpoint", &switch.endpoint(), "--certs"])
            .arg(switch.certs())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let csv = reconcile(B, "csv");
    let rows: Vec<&str> = csv.lines().filter(|l| l.contains(",RECEIVED,")).collect();
    assert_eq!(rows.len(), 2_500);
    assert!(csv.lines().last().unwrap().ends_with("received_count 2500 received_value 25.00"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&reconcile(A, "json")).unwrap();
    assert_eq!(json["transfers"].as_array().unwrap().len(), 2_500);
    assert_eq!((json["sent_count"].as_u64(), json["sent_value"].as_str()), (Some(2_500), Some("25.00")));
    // A token is good for its own cycle only; text that is no token is refused.
    for (bad, what) in [(token.as_str(), "of cycle"), ("not-a-token", "page_token")] {
        let error = a.cycle_transfers_page(cycle + 1, 10, bad).await.unwrap_err();
        assert!(matches!(&error, ponte_sdk::Error::InvalidArgument(_)), "{error:?}");
        assert!(error.to_string().contains(what), "{error}");
    }
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_a_cycle_returns_headroom_and_reports_survive_a_restart() {
    let mut switch = TestSwitch::start().await;
    let (a, c) = (switch.client(A).await, switch.client(C).await);
    let inbox = Payee::accepting().serve(&a).await;
    // C's net debit cap is 100.00.
    assert!(c.submit(&payment(&c, A, "100.00")).await.unwrap().is_settled());
    assert!(!c.submit(&payment(&c, A, "1.00")).await.unwrap().is_settled());
    let operator = switch.operator().await;
    let closed = operator.close_cycle().await.unwrap();
    let (digest, xml) = operator.cycle_report(closed.id, ReportFormat::Camt053).await.unwrap();
    assert!(xml.contains("<CdtDbtInd>DBIT</CdtDbtInd>"));
    validate_iso20022("camt.053.001.08.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(matches!(operator.confirm_cycle(closed.id + 1).await, Err(ponte_sdk::Error::Other { .. })));
    inbox.stop().await;
    switch.restart().await;
    let operator = switch.operator().await;
    let (digest_after, _) = operator.cycle_report(closed.id, ReportFormat::Json).await.unwrap();
    assert_eq!(digest, digest_after, "a closed cycle has the same report after a restart");
    // A quiet cycle (nothing paid since the last close) still gives the
    // central bank a statement the official schema accepts.
    let quiet = operator.close_cycle().await.unwrap();
    let (_, xml) = operator.cycle_report(quiet.id, ReportFormat::Camt053).await.unwrap();
    validate_iso20022("camt.053.001.08.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    operator.confirm_cycle(closed.id).await.unwrap();
    let (a, c) = (switch.client(A).await, switch.client(C).await);
    let inbox = Payee::accepting().serve(&a).await;
    assert!(c.submit(&payment(&c, A, "100.00")).await.unwrap().is_settled(), "headroom is back");
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefunded_participants_over_the_operator_api() {
    let switch = TestSwitch::start().await;
    let operator = switch.operator().await;
    let info = operator.set_prefunded(pid(C), true).await.unwrap();
    assert_eq!((info.liquidity, info.available), (ponte_sdk::Liquidity::Prefunded, Amount::ZERO));
    let info = operator.move_funds(pid(C), Amount::units(40), false).await.unwrap();
    assert_eq!((info.balance, info.available), (Amount::units(40), Amount::units(40)));
    let (a, c) = (switch.client(A).await, switch.client(C).await);
    let inbox = Payee::accepting().serve(&a).await;
    assert!(c.submit(&payment(&c, A, "40.00")).await.unwrap().is_settled());
    assert_eq!(
        c.submit(&payment(&c, A, "0.01")).await.unwrap(),
        PaymentOutcome::Rejected { reason: ponte_domain::ReasonCode::InsufficientLiquidity }
    );
    assert!(matches!(operator.move_funds(pid(C), Amount::units(1), true).await, Err(ponte_sdk::Error::Other { .. })));
    assert!(matches!(operator.move_funds(pid(A), Amount::units(1), false).await, Err(ponte_sdk::Error::Other { .. })));
    inbox.stop().await;
    switch.stop().await;
}

/// One participant with a million transfers in one cycle reads them all by
/// pages, exactly once each, through the Rust SDK, the `ponte reconcile`
/// command and the Python client (grpcio, stubs from the .proto): no answer
/// outgrows a message limit at this volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_a_million_transfers_reconciles_through_the_sdk_the_cli_and_python() {
    const N: usize = 1_000_000;
    if std::env::var("PONTE_TEST_E2E_ON_CQL").as_deref() == Ok("1") {
        // It uses the embedded store whatever the pass: the first pass ran it.
        eprintln!("skipped in the Cassandra pass: the same test as in the first");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    // Paging at volume does not depend on the store: the embedded one.
    config.store = None;
    config.engine.payee_timeout_ms = 30_000;
    config.dev_participants[0].net_debit_cap = "100000.00".into();
    config.engine.transfers_capacity = N as u64 + 10_000;
    // Settled transfers leave memory for the archive after a second, so the
    // cycle is read from the archive, as a closed cycle is in production: a
    // page starts where the last ended there too (BENCHMARKS.md, "Pages").
    config.engine.final_record_ms = 1_000;
    let switch = ponte_switch::server::start(config.clone()).await.expect("switch starts");
    let switch = TestSwitch { dir, switch: Some(switch), config };
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let started = std::time::Instant::now();
    // One submit stream, never more in flight than it admits at once
    // (`service.stream_inflight_max`, 16,384): no batch waits for room.
    let (sender, mut receiver) = a.open_submit_stream().await.unwrap();
    let (mut sent, mut settled) = (0, 0);
    while settled < N {
        while sent < N && sent - settled <= 15_000 {
            let batch: Vec<_> = (0..1_000).map(|_| payment(&a, B, "0.01")).collect();
            sender.send(&batch).await.unwrap();
            sent += batch.len();
        }
        for r in receiver.next().await.expect("results").unwrap() {
            assert!(matches!(r.outcome, Ok(PaymentOutcome::Settled { .. })), "{r:?}");
            settled += 1;
        }
    }
    eprintln!("{N} payments settled in {:.1} s", started.elapsed().as_secs_f64());
    let cycle = switch.operator().await.close_cycle().await.unwrap().id;
    let archiving = std::time::Instant::now();
    let stats = switch.switch.as_ref().unwrap().engine.stats();
    while stats.transfers_evicted.load(std::sync::atomic::Ordering::Relaxed) < N as u64 {
        assert!(archiving.elapsed() < std::time::Duration::from_secs(300), "the cycle is archived within 5 minutes");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!("the cycle's {N} transfers archived {:.1} s after it closed", archiving.elapsed().as_secs_f64());

    // The SDK, by the largest pages.
    let read = std::time::Instant::now();
    let paged = all_pages(&a, cycle, 10_000).await;
    assert_eq!(paged.len(), N);
    let sent: i64 = paged.iter().map(|t| t.amount.minor()).sum();
    assert_eq!(sent, N as i64);
    eprintln!("SDK: {N} transfers in 100 pages in {:.1} s", read.elapsed().as_secs_f64());

    // The CLI: its totals line.
    let read = std::time::Instant::now();
    let (endpoint, certs) = (switch.endpoint(), switch.certs());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ponte"))
            .args(["reconcile", &cycle.to_string(), "--as", &A.to_string(), "--format", "csv"])
            .args(["--page-size", "10000", "--endpoint", &endpoint, "--certs"])
            .arg(&certs)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = String::from_utf8(output.stdout).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",SENT,")).count(), N, "one row per transfer");
    assert!(
        csv.lines()
            .last()
            .unwrap()
            .ends_with("sent_count 1000000 sent_value 10000.00 received_count 0 received_value 0.00"),
        "{}",
        csv.lines().last().unwrap()
    );
    eprintln!("CLI: {N} transfers in {:.1} s", read.elapsed().as_secs_f64());

    // The Python client.
    let read = std::time::Instant::now();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python/ponte_client.py");
    let (target, certs) = (switch.endpoint().trim_start_matches("https://").to_owned(), switch.certs());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(&script)
            .args(["reconcile", "--endpoint", &target, "--as", &A.to_string(), "--cycle", &cycle.to_string()])
            .args(["--page-size", "10000", "--certs"])
            .arg(&certs)
            .output()
            .expect("python3 runs (with grpcio: scripts/test-all installs it)")
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["pages"], 100, "{report}");
    assert_eq!(
        (report["transfers"].as_u64(), report["distinct"].as_u64()),
        (Some(N as u64), Some(N as u64)),
        "{report}"
    );
    assert_eq!((report["sent_count"].as_u64(), report["sent_value_minor"].as_u64()), (Some(N as u64), Some(N as u64)));
    eprintln!("Python: {N} transfers in {:.1} s", read.elapsed().as_secs_f64());
    inbox.stop().await;
    switch.stop().await;
}
