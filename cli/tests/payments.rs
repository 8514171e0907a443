//! End-to-end payment tests over the real interface: a switch serving gRPC
//! over TCP with mTLS, its redb journal on disk, and SDK clients. Each test
//! proves one behaviour a bank relies on.

mod common;

use common::*;
use ponte_domain::{Amount, ReasonCode, TransferState};
use ponte_proto::v1 as pb;
use ponte_sdk::{Decision, Error, PaymentOutcome, Return};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_payment_settles_and_both_sides_are_told() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let payee = Payee::accepting();
    let inbox = payee.serve(&b).await;
    let p = payment(&a, B, "10.50");
    let outcome = a.submit(&p).await.unwrap();
    assert!(matches!(outcome, PaymentOutcome::Settled { .. }), "{outcome:?}");
    eventually("payee hears of settlement", || payee.settled.lock().unwrap().contains(&p.id)).await;
    let seen = payee.seen.lock().unwrap()[0].clone();
    assert_eq!((seen.id, seen.amount, seen.payer), (p.id, p.amount, p.payer));
    for client in [&a, &b] {
        let status = client.status(&p.id).await.unwrap();
        assert_eq!(status.state, TransferState::Settled);
        assert_eq!(status.amount, Amount::from_minor(10_50));
    }
    let operator = switch.operator().await;
    let (all, sum) = operator.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    let position = |code| all.iter().find(|p| p.code == pid(code)).unwrap().position;
    assert_eq!((position(A), position(B)), (Amount::from_minor(-10_50), Amount::from_minor(10_50)));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payee_reject_comes_back_with_its_reason() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::deciding(|_| Decision::Reject(ReasonCode::InvalidCreditorAccount)).serve(&b).await;
    let outcome = a.submit(&payment(&a, B, "1.00")).await.unwrap();
    assert_eq!(outcome, PaymentOutcome::Rejected { reason: ReasonCode::InvalidCreditorAccount });
    assert!(!ReasonCode::InvalidCreditorAccount.is_transient());
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert!(all.iter().all(|p| p.position == Amount::ZERO && p.reserved == Amount::ZERO));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_payee_times_out_and_is_told_not_to_credit() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let payee = Payee::slow(Duration::from_millis(1_500));
    let inbox = payee.serve(&b).await;
    let p = payment(&a, B, "3.00");
    let started = Instant::now();
    let outcome = a.submit(&p).await.unwrap();
    assert_eq!(outcome, PaymentOutcome::Rejected { reason: ReasonCode::PayeeTimeout });
    assert!(ReasonCode::PayeeTimeout.is_transient());
    assert!(started.elapsed() >= Duration::from_millis(650), "answered before the deadline");
    assert!(started.elapsed() < Duration::from_millis(1_400), "answered long after the deadline");
    eventually("payee hears of cancellation", || {
        payee.cancelled.lock().unwrap().contains(&(p.id, ReasonCode::PayeeTimeout))
    })
    .await;
    // The late accept changes nothing.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(a.status(&p.id).await.unwrap().state, TransferState::Rejected);
    assert!(payee.settled.lock().unwrap().is_empty());
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payee_without_inbox_is_rejected_at_once() {
    let switch = TestSwitch::start().await;
    let a = switch.client(A).await;
    let started = Instant::now();
    let outcome = a.submit(&payment(&a, C, "1.00")).await.unwrap();
    assert_eq!(outcome, PaymentOutcome::Rejected { reason: ReasonCode::PayeeOffline });
    assert!(started.elapsed() < Duration::from_millis(500));
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_end_to_end_ids() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let payee = Payee::accepting();
    let inbox = payee.serve(&b).await;
    let p = payment(&a, B, "7.00");
    let first = a.submit(&p).await.unwrap();
    let again = a.submit(&p).await.unwrap();
    assert_eq!(first, again, "same content: the original outcome");
    let mut modified = p.clone();
    modified.remittance = "changed".into();
    assert_eq!(a.submit(&modified).await.unwrap(), PaymentOutcome::Rejected { reason: ReasonCode::DuplicateModified });
    assert_eq!(payee.seen.lock().unwrap().len(), 1, "the payee was asked once");
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert_eq!(all.iter().find(|x| x.code == pid(A)).unwrap().position, Amount::from_minor(-7_00));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_resubmitted_while_pending_answers_every_caller() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let payee = Payee::slow(Duration::from_millis(300));
    let inbox = payee.serve(&b).await;
    let p = payment(&a, B, "3.00");
    // Three callers with the same payment while the payee is still deciding:
    // each waits for, and gets, the one outcome.
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let (a, p) = (a.clone(), p.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50 * i)).await;
                a.submit(&p).await
            })
        })
        .collect();
    for call in calls {
        let outcome = tokio::time::timeout(Duration::from_secs(5), call).await.unwrap().unwrap().unwrap();
        assert!(outcome.is_settled(), "{outcome:?}");
    }
    assert_eq!(payee.seen.lock().unwrap().len(), 1, "the payee was asked once");
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert_eq!(all.iter().find(|x| x.code == pid(A)).unwrap().position, Amount::from_minor(-3_00));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_liquidity_is_rejected() {
    let switch = TestSwitch::start().await;
    let (a, c) = (switch.client(A).await, switch.client(C).await);
    let payee = Payee::accepting();
    let inbox = payee.serve(&a).await;
    // C's net debit cap is 100.00.
    let outcome = c.submit(&payment(&c, A, "100.01")).await.unwrap();
    assert_eq!(outcome, PaymentOutcome::Rejected { reason: ReasonCode::InsufficientLiquidity });
    assert!(c.submit(&payment(&c, A, "100.00")).await.unwrap().is_settled());
    let outcome = c.submit(&payment(&c, A, "0.01")).await.unwrap();
    assert_eq!(outcome, PaymentOutcome::Rejected { reason: ReasonCode::InsufficientLiquidity });
    assert!(payee.seen.lock().unwrap().len() == 1);
    inbox.stop().await;
    switch.stop().await;
}

fn raw_request(payer: u32, payee: u32, amount: &str) -> pb::PaymentRequest {
    pb::PaymentRequest {
        end_to_end_id: payment_id(payer).to_string(),
        payer: Some(ponte_sdk::wire::account_to_wire(&account(payer, "1"))),
        payee: Some(pb::Payee {
            target: Some(pb::payee::Target::Account(ponte_sdk::wire::account_to_wire(&account(payee, "2")))),
        }),
        amount: amount.into(),
        currency: "BRL".into(),
        remittance: String::new(),
        lookup_by: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_inputs_get_clear_errors() {
    let switch = TestSwitch::start().await;
    let channel = switch.identity(&A.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut raw = pb::payments_client::PaymentsClient::new(channel);
    type Mutate = Box<dyn Fn(&mut pb::PaymentRequest)>;
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "over-precise amount",
            Box::new(|r| r.amount = "1.001".into()),
            "amount: amount has more than 2 decimal places",
        ),
        ("negative amount", Box::new(|r| r.amount = "-5.00".into()), "amount: amount must be greater than zero"),
        ("zero amount", Box::new(|r| r.amount = "0".into()), "amount: amount must be greater than zero"),
        ("not a number", Box::new(|r| r.amount = "ten".into()), "amount: amount is not a decimal number"),
        ("overflowing amount", Box::new(|r| r.amount = "999999999999999999999".into()), "amount: amount is too large"),
        ("oversized remittance", Box::new(|r| r.remittance = "x".repeat(141)), "remittance: at most 140 characters"),
        (
            "control characters",
            Box::new(|r| r.remittance = "a\u{0}b".into()),
            "remittance: must not contain control characters",
        ),
        (
            "malformed id",
            Box::new(|r| r.end_to_end_id = "E123".into()),
            "end_to_end_id: end-to-end id must be 32 characters",
        ),
        (
            "return id for a payment",
            Box::new(|r| r.end_to_end_id.replace_range(0..1, "D")),
            "end_to_end_id: a payment id starts with 'E'",
        ),
        (
            "bad payee participant code",
            Box::new(|r| {
                if let Some(pb::payee::Target::Account(a)) = r.payee.as_mut().and_then(|p| p.target.as_mut()) {
                    a.participant = "12".into()
                }
            }),
            "payee.account: participant: participant code must be exactly 8 digits",
        ),
        ("missing payee", Box::new(|r| r.payee = None), "payee: is required"),
        (
            "bad account number",
            Box::new(|r| r.payer.as_mut().unwrap().number = "12-34".into()),
            "payer: account number must be",
        ),
        ("wrong currency", Box::new(|r| r.currency = "USD".into()), "currency: this switch settles in BRL"),
    ];
    for (what, mutate, expected) in cases {
        let mut request = raw_request(A, B, "1.00");
        mutate(&mut request);
        let status = raw.submit(request).await.expect_err(what);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().starts_with(expected),
            "{what}: {:?} does not start with {expected:?}",
            status.message()
        );
    }
    // An unknown payee participant is a business outcome, not a protocol fault.
    let result = raw.submit(raw_request(A, 99999999, "1.00")).await.unwrap().into_inner();
    assert_eq!(result.status, pb::PaymentStatus::Rejected as i32);
    assert_eq!(result.reason.unwrap().code, "RC07");
    // A payment to oneself is refused as what it is (ISO's
    // TransactionForbidden), not as an unknown participant.
    let result = raw.submit(raw_request(A, A, "1.00")).await.unwrap().into_inner();
    assert_eq!(result.status, pb::PaymentStatus::Rejected as i32);
    assert_eq!(result.reason.unwrap().code, "AG01");
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_cannot_act_as_another() {
    let switch = TestSwitch::start().await;
    let channel = switch.identity(&A.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut raw = pb::payments_client::PaymentsClient::new(channel.clone());
    // Paying from B's account with A's certificate.
    let status = raw.submit(raw_request(B, C, "1.00")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    // A's own account, but an id made by B.
    let mut request = raw_request(A, C, "1.00");
    request.end_to_end_id = payment_id(B).to_string();
    assert_eq!(raw.submit(request).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    // A participant cannot make operator calls...
    let mut operator_as_a = pb::operator_client::OperatorClient::new(channel);
    let status = operator_as_a
        .set_limit(pb::SetLimitRequest { code: A.to_string(), net_debit_cap: "999999.00".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // ...and the operator cannot pay.
    let operator_channel = switch.identity("operator").channel(&switch.endpoint()).await.unwrap();
    let status =
        pb::payments_client::PaymentsClient::new(operator_channel).submit(raw_request(A, B, "1.00")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // Status of someone else's payment is not visible.
    let (a, b, c) = (switch.client(A).await, switch.client(B).await, switch.client(C).await);
    let inbox = Payee::accepting().serve(&b).await;
    let p = payment(&a, B, "1.00");
    a.submit(&p).await.unwrap();
    assert!(matches!(c.status(&p.id).await, Err(Error::NotFound(_))));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_payee_can_answer_its_payments() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    // B's core system is too slow to answer in time...
    let payee = Payee::slow(Duration::from_millis(2_000));
    let inbox = payee.serve(&b).await;
    // ...and C, over its own inbox stream, answers ACCEPT for B's payment.
    let channel = switch.identity(&C.to_string()).channel(&switch.endpoint()).await.unwrap();
    let (up, up_rx) = tokio::sync::mpsc::channel::<pb::InboxUp>(4);
    let c_inbox = pb::payments_client::PaymentsClient::new(channel)
        .inbox(tokio_stream::wrappers::ReceiverStream::new(up_rx))
        .await
        .unwrap();
    let p = payment(&a, B, "5.00");
    let submitted = tokio::spawn({
        let (a, p) = (a.clone(), p.clone());
        async move { a.submit(&p).await }
    });
    eventually("B is asked", || !payee.seen.lock().unwrap().is_empty()).await;
    let forged = pb::PayeeAnswer {
        end_to_end_id: p.id.to_string(),
        decision: pb::Decision::Accept as i32,
        reject_reason: String::new(),
        reject_code: 0,
    };
    up.send(pb::InboxUp { answers: vec![forged] }).await.unwrap();
    let outcome = submitted.await.unwrap().unwrap();
    assert_eq!(outcome, PaymentOutcome::Rejected { reason: ReasonCode::PayeeTimeout }, "C's answer must not settle it");
    drop((up, c_inbox));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_valid_client_certificate_are_refused() {
    let switch = TestSwitch::start().await;
    let ca = std::fs::read(switch.certs().join("ca.pem")).unwrap();
    // TLS with the right CA but no client certificate.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
        .domain_name("localhost");
    let attempt = async {
        let channel = tonic::transport::Endpoint::from_shared(switch.endpoint())?.tls_config(tls)?.connect().await?;
        let mut raw = pb::payments_client::PaymentsClient::new(channel);
        raw.submit(raw_request(A, B, "1.00")).await.map_err(|s| Box::new(s) as Box<dyn std::error::Error>)?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    // Bounded: a client whose handshake the server refused must not hang the test.
    let attempt = tokio::time::timeout(Duration::from_secs(20), attempt).await;
    assert!(!matches!(attempt, Ok(Ok(()))), "a connection without a client certificate must fail");
    // A certificate from another CA, even with a valid participant name.
    let other = tempfile::tempdir().unwrap();
    let pki = ponte_switch::net::tls::DevPki::new(other.path());
    pki.ensure(&["localhost".into()], &[pid(A)]).unwrap();
    let forged = ponte_sdk::Identity::from_files(
        &switch.certs().join("ca.pem"),
        &pki.identity(&A.to_string()).cert,
        &pki.identity(&A.to_string()).key,
    )
    .unwrap();
    let result = async {
        let client = ponte_sdk::Client::connect(&switch.endpoint(), pid(A), &forged).await?;
        client.submit(&payment(&client, B, "1.00")).await
    };
    let result = tokio::time::timeout(Duration::from_secs(20), result).await;
    assert!(!matches!(result, Ok(Ok(_))), "a certificate from another CA must be refused: {result:?}");
    // Whatever the clients saw, the switch executed nothing for them.
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert!(all.iter().all(|p| p.position == Amount::ZERO && p.reserved == Amount::ZERO), "{all:?}");
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_are_linked_and_capped() {
    let switch = TestSwitch::start().await;
    let (a, b, c) = (switch.client(A).await, switch.client(B).await, switch.client(C).await);
    let payer_side = Payee::accepting();
    let inbox_a = payer_side.serve(&a).await;
    let inbox_b = Payee::accepting().serve(&b).await;
    let p = payment(&a, B, "50.00");
    assert!(a.submit(&p).await.unwrap().is_settled());
    let give_back = |client: &ponte_sdk::Client, amount: &str| Return {
        id: client.new_return_id(),
        original: p.id,
        amount: Amount::parse_positive(amount).unwrap(),
        reason: ReasonCode::RefundRequested,
        remittance: String::new(),
    };
    assert!(b.return_payment(&give_back(&b, "20.00")).await.unwrap().is_settled());
    eventually("payer hears of the return", || payer_side.returned.lock().unwrap().len() == 1).await;
    assert_eq!(payer_side.returned.lock().unwrap()[0].amount, Amount::units(20));
    assert_eq!(
        b.return_payment(&give_back(&b, "30.01")).await.unwrap(),
        PaymentOutcome::Rejected { reason: ReasonCode::ReturnExceedsOriginal }
    );
    assert_eq!(
        c.return_payment(&give_back(&c, "1.00")).await.unwrap(),
        PaymentOutcome::Rejected { reason: ReasonCode::OriginalNotFound }
    );
    assert!(b.return_payment(&give_back(&b, "30.00")).await.unwrap().is_settled());
    let status = a.status(&p.id).await.unwrap();
    assert_eq!(status.returned, Amount::units(50));
    let (all, sum) = switch.operator().await.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    assert!(all.iter().all(|x| x.position == Amount::ZERO));
    inbox_a.stop().await;
    inbox_b.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_reaches_the_payee_even_offline_survives_a_restart_and_closes_by_return_or_refusal() {
    use ponte_sdk::RecallState;
    let mut switch = TestSwitch::start().await;
    let (a, b, c) = (switch.client(A).await, switch.client(B).await, switch.client(C).await);
    let payer_side = Payee::accepting();
    let inbox_a = payer_side.serve(&a).await;
    let payee_side = Payee::accepting();
    let inbox_b = payee_side.serve(&b).await;
    let (p, q) = (payment(&a, B, "50.00"), payment(&a, B, "8.00"));
    assert!(a.submit(&p).await.unwrap().is_settled());
    assert!(a.submit(&q).await.unwrap().is_settled());
    // B returns 20.00 of p on its own; a recall then asks for the 30.00 left.
    let give_back = |original, amount: &str| Return {
        id: b.new_return_id(),
        original,
        amount: Amount::parse_positive(amount).unwrap(),
        reason: ReasonCode::RefundRequested,
        remittance: String::new(),
    };
    assert!(b.return_payment(&give_back(p.id, "20.00")).await.unwrap().is_settled());

    // Only the payer's participant may recall; the others learn nothing.
    for (who, client) in [("payee", &b), ("third", &c)] {
        let error = client.recall(&p.id, ReasonCode::DuplicatePayment, "").await.unwrap_err();
        assert!(matches!(error, Error::NotFound(_)), "{who}: {error:?}");
    }
    // A return reason is not a recall reason.
    let error = a.recall(&p.id, ReasonCode::RefundRequested, "").await.unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(ref m) if m.contains("recall reason")), "{error:?}");
    let recall = a.recall(&p.id, ReasonCode::DuplicatePayment, "sent twice").await.unwrap();
    assert_eq!((recall.state, recall.amount), (RecallState::Open, Amount::units(30)));
    assert_eq!((recall.requester, recall.responder), (pid(A), pid(B)));
    // A retry is the same recall; other content is refused.
    assert_eq!(a.recall(&p.id, ReasonCode::DuplicatePayment, "sent twice").await.unwrap(), recall);
    let error = a.recall(&p.id, ReasonCode::FraudulentOrigin, "sent twice").await.unwrap_err();
    assert!(matches!(error, Error::AlreadyExists(_)), "{error:?}");
    eventually("B is asked", || payee_side.recalls_of(&p.id).iter().any(|r| r.state == RecallState::Open)).await;
    assert_eq!(payee_side.recalls_of(&p.id)[0].text, "sent twice");

    // B is offline when q is recalled, and the switch restarts: B hears of
    // it when its inbox opens again.
    inbox_b.stop().await;
    a.recall(&q.id, ReasonCode::FraudulentOrigin, "account takeover").await.unwrap();
    inbox_a.stop().await;
    switch.restart().await;
    let (a, b, c) = (switch.client(A).await, switch.client(B).await, switch.client(C).await);
    let inbox_a = payer_side.serve(&a).await;
    let inbox_b = payee_side.serve(&b).await;
    eventually("B is told of q after the restart", || !payee_side.recalls_of(&q.id).is_empty()).await;
    assert_eq!(b.get_recall(&p.id).await.unwrap().state, RecallState::Open, "p's recall survived the restart");

    // B accepts p's recall by returning what is left, and refuses q's.
    let back = give_back(p.id, "30.00");
    assert!(b.return_payment(&back).await.unwrap().is_settled());
    let accepted = RecallState::Accepted { return_id: back.id, amount: Amount::units(30) };
    assert_eq!(a.get_recall(&p.id).await.unwrap().state, accepted);
    eventually("A is told p's recall was accepted", || {
        payer_side.recalls_of(&p.id).iter().any(|r| r.state == accepted)
    })
    .await;
    let error = b.refuse_recall(&q.id, ReasonCode::FraudulentOrigin).await.unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(ref m) if m.contains("recall refusal")), "{error:?}");
    let error = a.refuse_recall(&q.id, ReasonCode::LegalDecision).await.unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "only the payee's participant answers: {error:?}");
    let refused = b.refuse_recall(&q.id, ReasonCode::LegalDecision).await.unwrap();
    assert_eq!(refused.state, RecallState::Refused { reason: ReasonCode::LegalDecision });
    eventually("A is told q's recall was refused", || {
        payer_side.recalls_of(&q.id).iter().any(|r| r.state == refused.state)
    })
    .await;
    let error = c.get_recall(&q.id).await.unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error:?}");
    // Money moved only by the returns: p came back whole, q stayed.
    assert_eq!(a.status(&p.id).await.unwrap().returned, Amount::units(50));
    assert_eq!(a.status(&q.id).await.unwrap().returned, Amount::ZERO);
    inbox_a.stop().await;
    inbox_b.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_submits_settle_and_report_bad_items_individually() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let (sender, mut receiver) = a.open_submit_stream().await.unwrap();
    let mut batch: Vec<_> = (0..500).map(|_| payment(&a, B, "0.50")).collect();
    sender.send(&batch[..250]).await.unwrap();
    sender.send(&batch[250..]).await.unwrap();
    let mut bad = raw_request(A, B, "1.001");
    bad.end_to_end_id = "bad-item".into();
    sender.send_wire(pb::SubmitBatch { payments: vec![bad] }).await.unwrap();
    drop(sender);
    let (mut settled, mut errors) = (0, Vec::new());
    while let Some(results) = receiver.next().await {
        for r in results.unwrap() {
            match r.outcome {
                Ok(PaymentOutcome::Settled { .. }) => settled += 1,
                Ok(other) => panic!("unexpected outcome {other:?}"),
                Err(e) => errors.push((r.end_to_end_id, e)),
            }
        }
    }
    assert_eq!(settled, 500);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "bad-item");
    assert!(matches!(errors[0].1, Error::InvalidArgument(_)));
    batch.truncate(1);
    assert!(a.submit(&batch[0]).await.unwrap().is_settled(), "streamed payments are idempotent too");
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_state_from_the_journal() {
    let mut switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let settled = payment(&a, B, "12.34");
    assert!(a.submit(&settled).await.unwrap().is_settled());
    inbox.stop().await;
    let refused = payment(&a, B, "1.00");
    assert_eq!(a.submit(&refused).await.unwrap(), PaymentOutcome::Rejected { reason: ReasonCode::PayeeOffline });
    switch.operator().await.set_limit(pid(A), Amount::units(77)).await.unwrap();
    switch.restart().await;
    let a = switch.client(A).await;
    assert_eq!(a.status(&settled.id).await.unwrap().state, TransferState::Settled);
    assert!(a.submit(&settled).await.unwrap().is_settled(), "resubmission after restart: same outcome");
    assert_eq!(a.submit(&refused).await.unwrap(), PaymentOutcome::Rejected { reason: ReasonCode::PayeeOffline });
    let info = switch.operator().await.participant(pid(A)).await.unwrap();
    assert_eq!((info.position, info.net_debit_cap), (Amount::from_minor(-12_34), Amount::units(77)));
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_administers_participants() {
    let switch = TestSwitch::start().await;
    let operator = switch.operator().await;
    let new = pid(10000009);
    let info = operator.register_participant(new, "Banco Novo", Amount::units(500)).await.unwrap();
    assert_eq!((info.available, info.online), (Amount::units(500), false));
    assert!(matches!(
        operator.register_participant(new, "Other name", Amount::units(1)).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(operator.set_limit(pid(10000008), Amount::units(1)).await, Err(Error::NotFound(_))));
    // A suspended payer is refused.
    operator.set_status(pid(A), ponte_sdk::ParticipantStatus::Suspended).await.unwrap();
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    assert_eq!(
        a.submit(&payment(&a, B, "1.00")).await.unwrap(),
        PaymentOutcome::Rejected { reason: ReasonCode::PayerSuspended }
    );
    operator.set_status(pid(A), ponte_sdk::ParticipantStatus::Active).await.unwrap();
    assert!(a.submit(&payment(&a, B, "1.00")).await.unwrap().is_settled());
    assert!(operator.participant(pid(B)).await.unwrap().online);
    inbox.stop().await;
    switch.stop().await;
}

/// Decides payments of one amount after a pause (its core system is slow
/// for them), all others at once.
struct SlowFor {
    amount: Amount,
    pause: Duration,
}

impl ponte_sdk::InboxHandler for SlowFor {
    async fn on_payment(&self, payment: ponte_sdk::IncomingPayment) -> Decision {
        if payment.amount == self.amount {
            tokio::time::sleep(self.pause).await;
        }
        Decision::Accept
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payees_instant_answers_do_not_wait_for_its_slow_ones() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let pause = Duration::from_millis(450);
    let mut inbox = b.serve_inbox(SlowFor { amount: Amount::from_minor(9_99), pause });
    tokio::time::timeout(Duration::from_secs(10), inbox.connected()).await.expect("inbox connects");
    // One message of 32 payments, every other one slow for the payee.
    let payments: Vec<_> = (0..32).map(|i| payment(&a, B, if i % 2 == 0 { "9.99" } else { "1.00" })).collect();
    let (sender, mut receiver) = a.open_submit_stream().await.unwrap();
    let started = Instant::now();
    sender.send(&payments).await.unwrap();
    let mut settled_after = std::collections::HashMap::new();
    while settled_after.len() < payments.len() {
        let batch = tokio::time::timeout(Duration::from_secs(10), receiver.next()).await.expect("results come");
        for result in batch.expect("stream open").unwrap() {
            assert!(result.outcome.as_ref().unwrap().is_settled(), "{result:?}");
            settled_after.insert(result.end_to_end_id, started.elapsed());
        }
    }
    for p in &payments {
        let after = settled_after[&p.id.to_string()];
        if p.amount == Amount::from_minor(9_99) {
            assert!(after >= pause, "a slow answer came before the payee decided: {after:?}");
        } else {
            assert!(after < pause - Duration::from_millis(100), "an instant answer waited: {after:?}");
        }
    }
    drop(sender);
    // Stopping ends the inbox's half of the stream at once (the switch then
    // ends its own), not after the SDK's drain bound of 5 s.
    let stopping = Instant::now();
    inbox.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(2), "the inbox took {:?} to stop", stopping.elapsed());
    switch.stop().await;
}
