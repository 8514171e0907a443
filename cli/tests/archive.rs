//! Hot state and archive, end to end on the embedded store over real gRPC
//! with mTLS: with a short duplicate window, settled payments leave the
//! engine's memory for the archive (`archive.redb`), and everything a bank
//! or the central bank asks about them still answers exactly: while the
//! id is in the duplicate window, a resubmission answered from its window
//! entry (the same outcome; a modified one refused) and its status from
//! the archive; past the window, status, returns capped across memory and
//! archive, a resubmission refused for its age, the
//! cycle's transfers and report with each payment once, a complete
//! envelope's report from the archive, and all of it again after a
//! restart.

mod common;

use common::*;
use ponte_domain::{Amount, ReasonCode, TransferState};
use ponte_sdk::disbursement::{Beneficiary, EnvelopeHeader, EnvelopeItem};
use ponte_sdk::{Client, PaymentOutcome, Return};
use std::sync::atomic::Ordering;

async fn pay(a: &Client, amount: &str) -> ponte_domain::EndToEndId {
    let p = payment(a, B, amount);
    let outcome = a.submit(&p).await.unwrap();
    assert!(matches!(outcome, PaymentOutcome::Settled { .. }), "{outcome:?}");
    p.id
}

fn give_back(b: &Client, original: ponte_domain::EndToEndId, minor: i64) -> Return {
    Return {
        id: b.new_return_id(),
        original,
        amount: Amount::from_minor(minor),
        reason: ReasonCode::RefundRequested,
        remittance: "refund".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_payments_answer_status_returns_cycles_and_reports_exactly_across_a_restart() {
    archived_payments_answer_exactly(None).await;
}

/// The same on Cassandra (`PONTE_TEST_CQL`, which `scripts/test-all` sets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cassandra_archived_payments_answer_exactly_across_a_restart() {
    if let Some(store) = test_store("archive") {
        archived_payments_answer_exactly(Some(store)).await;
    }
}

/// Agency `C` pays B three items; waits until the envelope is complete and
/// returns its report.
async fn pay_envelope(agency: &Client) -> Vec<ponte_sdk::disbursement::ItemOutcome> {
    let items: Vec<EnvelopeItem> = (0..3)
        .map(|n| EnvelopeItem {
            disbursement_id: format!("ARQ-{n}"),
            beneficiary: Beneficiary::Account(account(B, &format!("{}", 500 + n))),
            amount: Amount::from_minor(200),
            narrative: "Bolsa dezembro".into(),
        })
        .collect();
    let header = EnvelopeHeader {
        agency: pid(C),
        reference: "ENV-ARQ".into(),
        programme: "Bolsa Teste".into(),
        cycle_reference: "2026-12".into(),
        currency: "BRL".into(),
        paying_account: account(C, "1"),
        control_count: 3,
        control_total: Amount::from_minor(600),
    };
    agency.submit_envelope(&header, items).await.unwrap();
    for _ in 0..200 {
        let report = agency.envelope_report("ENV-ARQ").await.unwrap();
        if report.envelope.complete {
            assert_eq!(report.envelope.paid_count, 3, "{report:?}");
            return report.items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the envelope was not paid in 10 s");
}

async fn archived_payments_answer_exactly(store: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let on_cassandra = store.is_some();
    config.store = store;
    // End-to-end ids carry the minute they were made: the shortest
    // duplicate window that admits a fresh id is a minute.
    config.engine.id_age_ms_max = 60_000;
    config.engine.id_future_skew_ms_max = 1_000;
    // Full records leave for the archive a second after they are final;
    // their window entries stay for the minute.
    config.engine.final_record_ms = 1_000;
    // Snapshots too: the restart below starts from one taken after the
    // evictions, so the archive must hold what the snapshot no longer does.
    config.runtime.snapshot_every_ms = 200;
    let switch = ponte_switch::server::start(config.clone()).await.unwrap();
    let mut switch = TestSwitch { dir, switch: Some(switch), config };
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let mut old = Vec::new();
    // Ids carry their minute: one made at :59 leaves a one-minute window a
    // second later (then refused DT01, rightly). Start early in a minute so
    // the resubmission below is inside the window.
    while now_ms() % 60_000 > 40_000 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let kept = payment(&a, B, "1.00");
    let first = a.submit(&kept).await.unwrap();
    assert!(matches!(first, PaymentOutcome::Settled { .. }), "{first:?}");
    old.push(kept.id);
    for _ in 1..30 {
        old.push(pay(&a, "1.00").await);
    }
    let stats = switch.switch.as_ref().unwrap().engine.stats();
    // A complete envelope's items leave memory for the archive a second
    // after its last payment; its report reads the same from there.
    let agency = switch.client(C).await;
    let items = pay_envelope(&agency).await;
    eventually("the envelope's items archived", || stats.envelope_items_archived.load(Ordering::Relaxed) == 3).await;
    assert_eq!(agency.envelope_report("ENV-ARQ").await.unwrap().items, items, "the same report from the archive");
    // A second later the full records are archived; the window entries
    // answer a resubmission exactly as the first time, without paying
    // twice, and refuse a modified one.
    eventually("the full records archived", || stats.transfers_evicted.load(Ordering::Relaxed) >= 30).await;
    assert_eq!(a.submit(&kept).await.unwrap(), first, "the same answer from the window entry");
    let modified = ponte_sdk::Payment { amount: Amount::from_minor(101), ..kept.clone() };
    let refused = a.submit(&modified).await.unwrap();
    assert!(matches!(refused, PaymentOutcome::Rejected { reason: ReasonCode::DuplicateModified, .. }), "{refused:?}");
    assert_eq!(a.status(&old[0]).await.unwrap().state, TransferState::Settled, "status from the archive");
    let early = b.return_payment(&give_back(&b, old[0], 30)).await.unwrap();
    assert!(matches!(early, PaymentOutcome::Settled { .. }));
    tokio::time::sleep(std::time::Duration::from_secs(61)).await;
    eventually("the first payments archived", || stats.transfers_evicted.load(Ordering::Relaxed) >= 31).await;
    let recent = pay(&a, "5.00").await;

    // Status of an archived payment, with what was returned before archiving.
    let status = a.status(&old[0]).await.unwrap();
    assert_eq!((status.state, status.returned), (TransferState::Settled, Amount::from_minor(30)));
    let hidden = switch.client(C).await.status(&old[0]).await.unwrap_err().to_string();
    assert!(hidden.contains("not found") || hidden.contains("NotFound") || hidden.contains("no payment"), "{hidden}");
    // The id cannot be paid again: refused for its age.
    let again = a.submit(&ponte_sdk::Payment { id: old[1], ..payment(&a, B, "1.00") }).await.unwrap();
    assert!(matches!(again, PaymentOutcome::Rejected { reason: ReasonCode::IdTimestampOutOfRange, .. }), "{again:?}");
    // Returns of an archived payment: capped across memory and archive.
    let over = b.return_payment(&give_back(&b, old[0], 71)).await.unwrap();
    assert!(matches!(over, PaymentOutcome::Rejected { reason: ReasonCode::ReturnExceedsOriginal, .. }), "{over:?}");
    let rest = b.return_payment(&give_back(&b, old[0], 70)).await.unwrap();
    assert!(matches!(rest, PaymentOutcome::Settled { .. }), "{rest:?}");
    let status = a.status(&old[0]).await.unwrap();
    assert_eq!(status.returned, Amount::from_minor(100), "the archived payment is returned in full");
    let none_left = b.return_payment(&give_back(&b, old[0], 1)).await.unwrap();
    assert!(matches!(none_left, PaymentOutcome::Rejected { reason: ReasonCode::ReturnExceedsOriginal, .. }));
    // An unknown original is still refused as such.
    let unknown = b.return_payment(&give_back(&b, payment_id(A), 1)).await.unwrap();
    assert!(matches!(unknown, PaymentOutcome::Rejected { reason: ReasonCode::OriginalNotFound, .. }), "{unknown:?}");

    // The cycle: every payment and return once, archived or not.
    let check_cycle = |transfers: Vec<ponte_domain::TransferView>| {
        let mut ids: Vec<_> = transfers.iter().map(|t| t.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), transfers.len(), "no transfer twice");
        for id in old.iter().chain([&recent]) {
            assert!(ids.contains(id), "{id} missing from the cycle");
        }
        assert_eq!(transfers.len(), 31 + 2, "30 + 1 payments, 2 settled returns");
    };
    check_cycle(a.cycle_transfers(1).await.unwrap());
    // By pages of 4, archived and in memory mixed: the same transfers.
    let paged = all_pages(&a, 1, 4).await;
    assert_eq!(
        paged.iter().map(|t| t.id).collect::<Vec<_>>(),
        a.cycle_transfers(1).await.unwrap().iter().map(|t| t.id).collect::<Vec<_>>()
    );
    check_cycle(paged);
    let operator = switch.operator().await;
    let (_, report) = operator.cycle_report(1, ponte_sdk::ReportFormat::Json).await.unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["movements"], 33 + 3, "{report}: the payments, the returns, the envelope's items");
    assert_eq!(report["participants"][0]["net_position"], "-34.00", "{report}");
    inbox.stop().await;

    // After a restart from a snapshot taken past the evictions (plus the
    // journal after it), the same answers.
    let records = stats.journal_records.load(Ordering::Acquire);
    eventually("a snapshot covering everything", || stats.snapshot_records.load(Ordering::Relaxed) >= records).await;
    switch.restart().await;
    let replayed = switch.switch.as_ref().unwrap().replayed_records;
    assert!(replayed < records, "started from a snapshot: replayed {replayed} of {records} records");
    let a = switch.client(A).await;
    assert_eq!(a.status(&old[0]).await.unwrap().returned, Amount::from_minor(100));
    assert_eq!(a.status(&old[29]).await.unwrap().state, TransferState::Settled);
    check_cycle(a.cycle_transfers(1).await.unwrap());
    let agency = switch.client(C).await;
    assert_eq!(agency.envelope_report("ENV-ARQ").await.unwrap().items, items, "the envelope's report after a restart");
    let (all, sum) = switch.operator().await.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    let position = all.iter().find(|p| p.code == pid(A)).unwrap().position;
    assert_eq!(position, Amount::from_minor(-(30 * 100 + 500) + 100));
    assert_eq!(dir_has_archive(&switch), !on_cassandra, "the embedded archive is a file beside the journal");
}

fn dir_has_archive(switch: &TestSwitch) -> bool {
    std::fs::read_dir(switch.dir.path()).unwrap().any(|e| e.unwrap().file_name() == "archive.redb")
}
