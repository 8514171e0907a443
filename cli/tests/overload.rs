//! Overload over the real interface: a switch whose request queue holds only
//! a few commands is flooded with a thousand concurrent unary submits. The
//! excess is refused at once with RESOURCE_EXHAUSTED (the SDK's
//! `Error::Overloaded`, retryable), the queue never grows past its bound,
//! admitted payments settle, and nothing is lost or half-done: every refused
//! id is unknown to the switch, every settled one is settled once, and the
//! payer's position is exactly the settled total.

mod common;

use common::*;
use ponte_domain::{Amount, TransferState};
use ponte_sdk::Error;
use ponte_switch::server;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gets_fast_refusals_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.runtime.request_queue_max = 4;
    let switch = server::start(config.clone()).await.unwrap();
    let harness = TestSwitch { dir, switch: Some(switch), config };
    let (a, b) = (harness.client(A).await, harness.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;

    let payments: Vec<_> = (0..1_000).map(|_| payment(&a, B, "0.01")).collect();
    let calls = payments.iter().map(|p| {
        let a = a.clone();
        async move {
            let started = Instant::now();
            let result = a.submit(p).await;
            (result, started.elapsed())
        }
    });
    let results = futures::future::join_all(calls).await;

    let (mut settled, mut refused, mut slowest_refusal) = (0_i64, 0, Duration::ZERO);
    for (p, (result, took)) in payments.iter().zip(&results) {
        match result {
            Ok(outcome) => {
                assert!(outcome.is_settled(), "{}: {outcome:?}", p.id);
                settled += 1;
            }
            Err(Error::Overloaded(message)) => {
                assert!(message.contains("capacity"), "{message}");
                refused += 1;
                slowest_refusal = slowest_refusal.max(*took);
            }
            Err(other) => panic!("{}: unexpected {other}", p.id),
        }
    }
    eprintln!("{settled} settled, {refused} refused; slowest refusal {slowest_refusal:?}");
    assert!(refused > 0, "a queue of 4 under 1,000 concurrent calls must refuse some");
    assert!(settled > 0, "admitted payments still settle");
    assert!(slowest_refusal < Duration::from_secs(2), "refusals are fast: {slowest_refusal:?}");
    // Nothing lost, nothing half-done.
    for (p, (result, _)) in payments.iter().zip(&results) {
        match (result, a.status(&p.id).await) {
            (Ok(_), Ok(status)) => assert_eq!(status.state, TransferState::Settled),
            (Err(_), Err(Error::NotFound(_))) => {}
            (result, status) => panic!("{}: answered {result:?} but the switch says {status:?}", p.id),
        }
    }
    let operator = harness.operator().await;
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::from_minor(-settled));
    assert_eq!(operator.participant(pid(A)).await.unwrap().reserved, Amount::ZERO);
    // And the refused ones go through when sent again, same ids.
    for (p, (result, _)) in payments.iter().zip(&results).take(200) {
        if result.is_err() {
            assert!(a.submit(p).await.unwrap().is_settled(), "{}", p.id);
        }
    }
    inbox.stop().await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_over_capacity_gets_fast_refusals_not_a_growing_queue() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // 32 payments in flight per stream, a payee that takes 300 ms to answer,
    // and batches refused if they cannot enter within 100 ms.
    config.service.stream_inflight_max = 32;
    config.service.stream_admission_wait_ms = 100;
    let switch = server::start(config.clone()).await.unwrap();
    let harness = TestSwitch { dir, switch: Some(switch), config };
    let (a, b) = (harness.client(A).await, harness.client(B).await);
    let inbox = Payee::slow(Duration::from_millis(300)).serve(&b).await;

    let payments: Vec<_> = (0..640).map(|_| payment(&a, B, "0.01")).collect();
    let (sender, mut receiver) = a.open_submit_stream().await.unwrap();
    let started = Instant::now();
    // Send and receive at once, as a real client does.
    let to_send = payments.clone();
    let sending = tokio::spawn(async move {
        let mut sent_at = std::collections::HashMap::new();
        for batch in to_send.chunks(16) {
            let now = Instant::now();
            sent_at.extend(batch.iter().map(|p| (p.id.to_string(), now)));
            sender.send(batch).await.unwrap();
            // 640 payments/s offered to a stream that completes ~107/s.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (sender, sent_at)
    });
    let mut answered_at = std::collections::HashMap::new();
    let mut answers = std::collections::HashMap::new();
    while answers.len() < payments.len() {
        let results = tokio::time::timeout(Duration::from_secs(20), receiver.next())
            .await
            .expect("every payment is answered")
            .expect("stream open")
            .unwrap();
        let now = Instant::now();
        for r in results {
            answered_at.insert(r.end_to_end_id.clone(), now);
            answers.insert(r.end_to_end_id.clone(), r.outcome);
        }
    }
    let took = started.elapsed();
    let settled = answers.values().filter(|o| matches!(o, Ok(o) if o.is_settled())).count() as i64;
    let refused = answers.values().filter(|o| matches!(o, Err(Error::Overloaded(_)))).count();
    eprintln!("{settled} settled, {refused} refused in {took:?}");
    assert_eq!(settled as usize + refused, payments.len(), "only settled or refused");
    assert!(refused > 0 && settled > 0);
    // Queued, 640 payments behind a 300 ms payee 32 at a time would take
    // 6 s; refusing the excess answers everyone far sooner (the last batch
    // is sent after 1 s).
    assert!(took < Duration::from_secs(5), "{took:?}");
    for p in &payments {
        if answers[p.id.as_str()].is_err() {
            assert!(matches!(a.status(&p.id).await, Err(Error::NotFound(_))), "{} was refused but exists", p.id);
        }
    }
    // Admitted payments wait at most the admission bound for room, then
    // their 300 ms payee: their latency does not grow with the backlog
    // (queued, the last would wait ~6 s).
    let (sender, sent_at) = sending.await.unwrap();
    let mut admitted: Vec<Duration> = answers
        .iter()
        .filter(|(_, o)| matches!(o, Ok(o) if o.is_settled()))
        .map(|(id, _)| answered_at[id].duration_since(sent_at[id]))
        .collect();
    admitted.sort();
    let (median, slowest) = (admitted[admitted.len() / 2], admitted[admitted.len() - 1]);
    eprintln!("admitted latency: median {median:?}, slowest {slowest:?}");
    assert!(slowest < Duration::from_millis(1_500), "admitted latency grew with the backlog: {slowest:?}");
    let operator = harness.operator().await;
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::from_minor(-settled));
    drop(sender);
    inbox.stop().await;
    harness.stop().await;
}
