//! The journal store losing quorum under a running switch, on a real
//! Apache Cassandra that this test stops and starts again
//! (`PONTE_TEST_OUTAGE_CASSANDRA_DIR`: the folder `scripts/cassandra start`
//! was given; `scripts/test-all` runs this test alone, last, because it
//! takes the shared Cassandra away from every other test).
//!
//! With a single node, stopping it is the store losing quorum: the switch
//! must stop acknowledging at once, answer UNAVAILABLE, keep running, and
//! resume by itself when the node is back (taking its lease back, its
//! epoch checked); a payment caught in the outage gets one true outcome,
//! and the ledger after a restart is the same. A node started while the
//! store is away waits for it and starts by itself when it returns.

mod common;

use common::*;
use ponte_domain::{Amount, ReasonCode, TransferState};
use ponte_sdk::{Error, PaymentOutcome};
use std::process::Command;
use std::time::{Duration, Instant};

fn cassandra(action: &str, dir: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cassandra");
    let status = Command::new("bash").arg(script).arg(action).arg(dir).status().expect("scripts/cassandra runs");
    assert!(status.success(), "scripts/cassandra {action} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_stores_quorum_pauses_the_switch_which_resumes_by_itself() {
    let (Ok(dir), Ok(address)) = (std::env::var("PONTE_TEST_OUTAGE_CASSANDRA_DIR"), std::env::var("PONTE_TEST_CQL"))
    else {
        eprintln!("SKIPPED: set PONTE_TEST_OUTAGE_CASSANDRA_DIR and PONTE_TEST_CQL (scripts/test-all does, last)");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut config = config(data.path());
    config.store = Some(format!("cql://{address}/outage_{}?lease_ttl_s=2", std::process::id()));
    config.engine.payee_timeout_ms = 5_000;
    let switch = ponte_switch::server::start(config.clone()).await.unwrap();
    let mut switch = TestSwitch { dir: data, switch: Some(switch), config };
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    assert!(a.submit(&payment(&a, B, "10.00")).await.unwrap().is_settled());

    // The store goes away.
    cassandra("stop", &dir);
    let caught = payment(&a, B, "1.00");
    let in_outage = {
        let (a, caught) = (a.clone(), caught.clone());
        tokio::spawn(async move { a.submit(&caught).await })
    };
    // Soon every new call is refused UNAVAILABLE, at once.
    let started = Instant::now();
    let refused = loop {
        assert!(started.elapsed() < Duration::from_secs(30), "no UNAVAILABLE within 30 s of the store going away");
        match a.submit(&payment(&a, B, "1.00")).await {
            Err(error @ Error::Unavailable(_)) => break error,
            Ok(PaymentOutcome::Settled { .. }) => panic!("a payment settled with the store away"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert!(refused.to_string().contains("quorum"), "says why: {refused}");
    assert!(
        switch.switch.as_ref().unwrap().engine.stats().store_unavailable.load(std::sync::atomic::Ordering::Relaxed)
    );

    // The store comes back: the switch resumes by itself.
    cassandra("start", &dir);
    let started = Instant::now();
    let resumed = loop {
        assert!(started.elapsed() < Duration::from_secs(90), "the switch did not resume within 90 s of the store");
        let p = payment(&a, B, "2.00");
        match a.submit(&p).await {
            Ok(outcome) if outcome.is_settled() => break p.id,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    // The payment caught in the outage has one true outcome: held and
    // journaled once the store was back, or refused at the door and unknown
    // (then sending it again pays it, once).
    let caught_outcome = tokio::time::timeout(Duration::from_secs(30), in_outage).await.unwrap().unwrap();
    let status = a.status(&caught.id).await;
    match (caught_outcome, status) {
        (Ok(PaymentOutcome::Settled { .. }), Ok(status)) => assert_eq!(status.state, TransferState::Settled),
        (Ok(PaymentOutcome::Rejected { reason }), Ok(status)) => {
            assert_eq!(reason, ReasonCode::PayeeTimeout, "only the payee deadline can have passed");
            assert_eq!(status.state, TransferState::Rejected);
        }
        (Err(Error::Unavailable(_)), Err(Error::NotFound(_))) => {
            assert!(a.submit(&caught).await.unwrap().is_settled(), "refused at the door, paid when sent again");
            assert!(a.submit(&caught).await.unwrap().is_settled(), "and the same outcome, not a second payment");
        }
        // The call was cut while held: the status is the truth, and final.
        (Err(_), Ok(status)) => assert!(matches!(status.state, TransferState::Settled | TransferState::Rejected)),
        (outcome, status) => panic!("caught in the outage: {outcome:?}, status {status:?}"),
    }
    inbox.stop().await;
    let operator = switch.operator().await;
    let (before, sum) = operator.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    assert_eq!(a.status(&resumed).await.unwrap().state, TransferState::Settled);

    // The same ledger after a restart from the store.
    switch.restart().await;
    let (after, sum) = switch.operator().await.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    let positions = |all: &[ponte_sdk::ParticipantInfo]| all.iter().map(|p| (p.code, p.position)).collect::<Vec<_>>();
    assert_eq!(positions(&before), positions(&after));

    // A restart while the store is away: the node waits for it (it does
    // not exit, and does not listen), and starts by itself when it is back.
    switch.switch.take().unwrap().stop().await;
    cassandra("stop", &dir);
    let starting = tokio::spawn(ponte_switch::server::start(switch.config.clone()));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!starting.is_finished(), "the switch must wait for the store, not give up");
    cassandra("start", &dir);
    let restarted = tokio::time::timeout(Duration::from_secs(120), starting)
        .await
        .expect("started within 120 s of the store coming back")
        .unwrap()
        .expect("the switch starts once the store answers");
    switch.switch = Some(restarted);
    let (again, sum) = switch.operator().await.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    assert_eq!(positions(&before), positions(&again));
    let a = switch.client(A).await;
    let inbox = Payee::accepting().serve(&switch.client(B).await).await;
    assert!(a.submit(&payment(&a, B, "3.00")).await.unwrap().is_settled());
    inbox.stop().await;
}
