//! A real 3-node Apache Cassandra cluster (RF=3) under a running switch:
//! nodes are SIGKILLed under load and brought back. Needs the cluster of
//! `scripts/cassandra-cluster start DIR` and `PONTE_TEST_CLUSTER_DIR=DIR`
//! (`scripts/cassandra-cluster test DIR` does both); skipped otherwise.
//!
//! - One node lost under load: no call fails, payments keep settling.
//! - A second node lost (no quorum): the switch stops acknowledging,
//!   refuses new calls UNAVAILABLE at once, keeps running, and resumes by
//!   itself when a node returns; calls caught in between get their one true
//!   outcome (the SDK resolves them).
//! - Everything acknowledged is durable: each payment told settled is
//!   settled, none twice; positions sum to zero and are the same after a
//!   restart from the surviving replicas.

mod common;

use common::*;
use ponte_domain::{Amount, EndToEndId, ReasonCode, TransferState};
use ponte_sdk::{Client, Error, Payment, PaymentOutcome};
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: &str = "127.0.0.1:19042,127.0.0.2:19042,127.0.0.3:19042";

fn cluster(action: &str, dir: &str, node: u32) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cassandra-cluster");
    let status =
        Command::new("bash").arg(script).arg(action).arg(dir).arg(node.to_string()).status().expect("script runs");
    assert!(status.success(), "scripts/cassandra-cluster {action} {node} failed");
}

/// What the payers sent and heard, with the time of each settlement heard.
#[derive(Default)]
struct Heard {
    sent: HashMap<EndToEndId, Payment>,
    settled: Vec<(Instant, EndToEndId)>,
    /// Rejected: only the payee deadline can pass (an outage outlasting it).
    rejected: Vec<EndToEndId>,
    refused: usize,
    errors: Vec<String>,
}

/// One payer loop: unary submits from A to B until `stop`.
async fn pay(a: Client, heard: Arc<Mutex<Heard>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let p = payment(&a, B, "1.00");
        heard.lock().unwrap().sent.insert(p.id, p.clone());
        let result = a.submit(&p).await;
        // Refused at the door while the store has no quorum: not made; the
        // payer pauses before its next one.
        let refused = matches!(&result, Err(Error::Unavailable(message)) if message.contains("quorum"));
        {
            let mut heard = heard.lock().unwrap();
            match result {
                Ok(PaymentOutcome::Settled { .. }) => heard.settled.push((Instant::now(), p.id)),
                Ok(PaymentOutcome::Rejected { reason: ReasonCode::PayeeTimeout }) => heard.rejected.push(p.id),
                Ok(PaymentOutcome::Rejected { reason }) => heard.errors.push(format!("{}: rejected {reason}", p.id)),
                Err(_) if refused => heard.refused += 1,
                Err(error) => heard.errors.push(format!("{}: {error}", p.id)),
            }
        }
        if refused {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The longest time without a settlement heard between `from` and `to`.
fn longest_gap(heard: &Heard, from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = heard.settled.iter().map(|(t, _)| *t).filter(|t| (from..to).contains(t)).collect();
    times.push(from);
    times.push(to);
    times.sort();
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_loses_one_node_without_error_and_two_without_loss() {
    let Ok(dir) = std::env::var("PONTE_TEST_CLUSTER_DIR") else {
        eprintln!("SKIPPED: run scripts/cassandra-cluster test DIR (a 3-node cluster)");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut config = config(data.path());
    // The default lease, 5 s. With 2 s a loaded 2-core CI machine once saw
    // lease renewals (lightweight transactions) outlast the lease while a
    // killed node was still being noticed, and 11 payments were refused
    // with only one node of three down (BENCHMARKS.md says as much of a
    // 2 s lease at full load).
    config.store = Some(format!("cql://{NODES}/three_{}?replication_factor=3&lease_ttl_s=5", std::process::id()));
    config.engine.payee_timeout_ms = 5_000;
    let switch = ponte_switch::server::start(config.clone()).await.unwrap();
    let mut switch = TestSwitch { dir: data, switch: Some(switch), config };
    // The payers pay 1.00 each for a minute and more: room for all of it
    // (the development cap of 1,000.00 ran out in one run, AM04).
    switch.operator().await.set_limit(pid(A), Amount::from_minor(100_000_000_00)).await.unwrap();
    let a = switch.client(A).await.with_in_doubt_wait(Duration::from_secs(120));
    let inbox = Payee::accepting().serve(&switch.client(B).await).await;
    let heard = Arc::new(Mutex::new(Heard::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let payers: Vec<_> = (0..8).map(|_| tokio::spawn(pay(a.clone(), heard.clone(), stop.clone()))).collect();
    let stats = switch.switch.as_ref().unwrap().engine.stats();
    let count = |heard: &Arc<Mutex<Heard>>| heard.lock().unwrap().settled.len();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_loss = count(&heard);
    assert!(before_loss > 0, "nothing settled with three nodes up");

    // One node lost under load: nothing fails, nothing stalls.
    let lost_one = Instant::now();
    cluster("kill", &dir, 3);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let one_down = Instant::now();
    {
        let heard = heard.lock().unwrap();
        assert!(heard.errors.is_empty(), "errors with one node down: {:?}", &heard.errors[..heard.errors.len().min(5)]);
        assert_eq!(heard.refused, 0, "refusals with one node down");
        let gap = longest_gap(&heard, lost_one, one_down);
        let settled = heard.settled.len() - before_loss;
        eprintln!("one node SIGKILLed: {settled} settled in the next 8 s, longest pause {gap:?}");
        assert!(gap < Duration::from_secs(6), "payments stalled {gap:?} after losing one node of three");
    }

    // A second node lost: no quorum. Nothing more is acknowledged; new
    // calls are refused at once; the switch keeps running.
    cluster("kill", &dir, 2);
    let lost_two = Instant::now();
    let started = Instant::now();
    while !stats.store_unavailable.load(Ordering::Relaxed) {
        assert!(started.elapsed() < Duration::from_secs(30), "the switch did not notice the lost quorum in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let noticed = lost_two.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let acknowledged_without_quorum = {
        let heard = heard.lock().unwrap();
        heard.settled.iter().filter(|(t, _)| *t > lost_two + noticed).count()
    };
    assert_eq!(acknowledged_without_quorum, 0, "payments acknowledged without a quorum");
    // (The payers' own calls are held, waiting: a new call is refused.)
    let asked = Instant::now();
    let refused = tokio::time::timeout(Duration::from_secs(5), a.submit(&payment(&a, B, "1.00"))).await;
    assert!(
        matches!(&refused, Ok(Err(Error::Unavailable(m))) if m.contains("quorum")),
        "a new call is refused UNAVAILABLE without quorum: {refused:?}"
    );
    eprintln!("a new call was refused in {:?}: {}", asked.elapsed(), refused.unwrap().unwrap_err());
    eprintln!("second node SIGKILLed: no quorum noticed after {noticed:?}");

    // A node returns: the switch resumes by itself.
    let back = Instant::now();
    cluster("restart", &dir, 2);
    let node_up = back.elapsed();
    let settled_before = count(&heard);
    while count(&heard) <= settled_before {
        assert!(back.elapsed() < Duration::from_secs(180), "the switch did not resume within 180 s of the node");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("node 2 back after {node_up:?}; payments settle again {:?} after it was started", back.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for payer in payers {
        tokio::time::timeout(Duration::from_secs(150), payer).await.expect("every payer's last call ends").unwrap();
    }
    inbox.stop().await;

    // Everything acknowledged is durable, each once.
    let heard = Arc::try_unwrap(heard).ok().unwrap().into_inner().unwrap();
    assert!(heard.errors.is_empty(), "calls ended in errors: {:?}", &heard.errors[..heard.errors.len().min(5)]);
    let told: std::collections::HashSet<EndToEndId> = heard.settled.iter().map(|(_, id)| *id).collect();
    let mut settled_total = Amount::ZERO;
    for (id, p) in &heard.sent {
        match a.status(id).await {
            Ok(status) if status.state == TransferState::Settled => {
                settled_total = settled_total.checked_add(p.amount).unwrap();
            }
            Ok(status) => {
                assert!(!told.contains(id), "{id} told settled but {:?}", status.state);
                assert!(status.state != TransferState::Reserved, "{id} still reserved");
            }
            Err(Error::NotFound(_)) => assert!(!told.contains(id), "acknowledged payment {id} lost"),
            Err(error) => panic!("status of {id}: {error}"),
        }
    }
    let operator = switch.operator().await;
    let (before, sum) = operator.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    let position =
        |all: &[ponte_sdk::ParticipantInfo], code| all.iter().find(|p| p.code == pid(code)).unwrap().position;
    assert_eq!(position(&before, A), settled_total.checked_neg().unwrap(), "each settled payment once");
    eprintln!(
        "{} payments sent, {} acknowledged settled, {} rejected (payee deadline), {} refused at the door without \
         quorum, {settled_total} settled",
        heard.sent.len(),
        told.len(),
        heard.rejected.len(),
        heard.refused
    );

    // A restart reads the same ledger from the surviving replicas (node 3 still down).
    switch.restart().await;
    let (after, sum) = switch.operator().await.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    let positions = |all: &[ponte_sdk::ParticipantInfo]| all.iter().map(|p| (p.code, p.position)).collect::<Vec<_>>();
    assert_eq!(positions(&before), positions(&after));
    switch.stop().await;
    cluster("restart", &dir, 3);
}
