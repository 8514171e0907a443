//! Payments in doubt: the real `ponte` binary is killed with SIGKILL while
//! payers wait on unary submits (some not yet received, some reserved, some
//! settled with the answer on its way), then restarted on the same data
//! directory and port. Each
//! caught call must come back with the payment's one true outcome, found by
//! the SDK itself (status by id, or the same id and content sent again),
//! never an error; positions must equal the settled outcomes, each once.
//! A switch that stays away past the client's in-doubt wait gives
//! `Error::InDoubt`, and `Client::resolve` finds the outcome later.

mod common;

use common::{A, B, Payee, PonteProcess, free_port, payment, pid, process_clients, spawn_ponte};
use ponte_domain::{Amount, TransferState};
use ponte_sdk::{Error, PaymentOutcome};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PAYEE_TIMEOUT_MS: u64 = 3_000;

fn spawn_server(dir: &Path, port: u16, store: Option<&str>) -> PonteProcess {
    spawn_ponte(dir, port, store, &["--payee-timeout-ms", &PAYEE_TIMEOUT_MS.to_string()])
}

fn kill(server: &mut PonteProcess) {
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
}

/// One payer: unary submits one after the other until `stop`; each call's
/// payment, result, and start and end times.
type Call = (ponte_sdk::Payment, Result<PaymentOutcome, Error>, Instant, Instant);

async fn pay_until(a: ponte_sdk::Client, stop: Arc<AtomicBool>) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let p = payment(&a, B, &format!("{}.{:02}", 1 + i % 50, i % 100));
        let started = Instant::now();
        let result = a.submit(&p).await;
        calls.push((p, result, started, Instant::now()));
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_by_a_crash_return_each_payments_one_true_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let store = common::test_store("in_doubt");
    let mut server = spawn_server(dir.path(), port, store.as_deref());
    let (a, b, _) = process_clients(dir.path(), &server.endpoint).await;
    // The payee answers at once: the kill lands on calls not yet received,
    // reserved, and settled with the answer on its way.
    let payee = Payee::accepting();
    let inbox = payee.serve(&b).await;
    let stop = Arc::new(AtomicBool::new(false));
    let payers: Vec<_> = (0..16).map(|_| tokio::spawn(pay_until(a.clone(), stop.clone()))).collect();
    common::eventually("payments flow", || payee.settled.lock().unwrap().len() >= 200).await;
    let killed = Instant::now();
    kill(&mut server);
    let _ = tokio::time::timeout(Duration::from_secs(10), inbox.stop()).await;

    // A call cut by the kill ends after the new process began to start: it
    // waited through the crash. (Taken before the start, because a cut call
    // retrying with backoff may finish as soon as the new process listens,
    // before `spawn_server` has read its "serving" line on a loaded machine.)
    let restarted = Instant::now();
    server = spawn_server(dir.path(), port, store.as_deref());
    let (_, b, operator) = process_clients(dir.path(), &server.endpoint).await;
    let inbox = Payee::accepting().serve(&b).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = Vec::new();
    for payer in payers {
        calls.extend(tokio::time::timeout(Duration::from_secs(60), payer).await.expect("every call ends").unwrap());
    }
    let cut = calls.iter().filter(|(_, _, started, ended)| *started < killed && *ended > restarted).count();
    assert!(cut > 0, "the kill caught no call in flight: it proved nothing");
    let mut settled = Amount::ZERO;
    let (mut settled_cut, mut rejected_cut) = (0, 0);
    for (p, result, started, ended) in &calls {
        let outcome = result.as_ref().unwrap_or_else(|error| panic!("{}: an error, not its outcome: {error}", p.id));
        let was_cut = *started < killed && *ended > restarted;
        // The same `a` client: its connection is made again to the new process.
        let status = a.status(&p.id).await.unwrap();
        match outcome {
            PaymentOutcome::Settled { .. } => {
                assert_eq!(status.state, TransferState::Settled);
                settled = settled.checked_add(p.amount).unwrap();
                settled_cut += usize::from(was_cut);
            }
            PaymentOutcome::Rejected { reason } => {
                assert_eq!(status.state, TransferState::Rejected);
                assert_eq!(status.reason, Some(*reason));
                rejected_cut += usize::from(was_cut);
            }
        }
    }
    eprintln!(
        "{} calls, {cut} cut by the kill (then {settled_cut} settled, {rejected_cut} rejected); {settled} settled",
        calls.len()
    );
    let (participants, sum) = operator.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    let position = |code| participants.iter().find(|p| p.code == pid(code)).unwrap().position;
    assert_eq!(position(A), settled.checked_neg().unwrap(), "each settled payment moved money once");
    inbox.stop().await;
    kill(&mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_away_past_the_wait_gives_in_doubt_and_resolve_finds_the_outcome_later() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let store = common::test_store("in_doubt_wait");
    let mut server = spawn_server(dir.path(), port, store.as_deref());
    let (a, b, _) = process_clients(dir.path(), &server.endpoint).await;
    let a = a.with_in_doubt_wait(Duration::from_secs(2));
    let slow = Payee::slow(Duration::from_millis(800));
    let inbox = slow.serve(&b).await;
    let p = payment(&a, B, "7.00");
    let call = {
        let (a, p) = (a.clone(), p.clone());
        tokio::spawn(async move { a.submit(&p).await })
    };
    common::eventually("the payee is asked", || !slow.seen.lock().unwrap().is_empty()).await;
    kill(&mut server);
    let _ = tokio::time::timeout(Duration::from_secs(10), inbox.stop()).await;
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(20), call).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(error, Error::InDoubt { .. }), "in doubt, not a guess: {error}");
    assert!(error.to_string().contains(&p.id.to_string()), "names the payment: {error}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after its wait, not later");

    server = spawn_server(dir.path(), port, store.as_deref());
    let (_, b, _) = process_clients(dir.path(), &server.endpoint).await;
    let inbox = Payee::accepting().serve(&b).await;
    let a = a.with_in_doubt_wait(Duration::from_secs(30));
    let outcome = a.resolve(&p).await.unwrap();
    let status = a.status(&p.id).await.unwrap();
    assert_eq!(outcome.is_settled(), status.state == TransferState::Settled, "{outcome:?} vs {status:?}");
    assert_eq!(a.resolve(&p).await.unwrap(), outcome, "the same answer again");
    // A payment never sent is made by resolve, once.
    let fresh = payment(&a, B, "1.00");
    assert!(a.resolve(&fresh).await.unwrap().is_settled());
    assert!(a.resolve(&fresh).await.unwrap().is_settled());
    inbox.stop().await;
    kill(&mut server);
}
