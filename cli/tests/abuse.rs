//! Abuse over the real gRPC/TLS interface. Each attack gets a clear error or
//! a bounded response, and afterwards the same server still settles an
//! ordinary payment promptly, with its memory bounded:
//! - messages over the size bound, and fields far over theirs;
//! - a payee flooding its inbox with answers for ids it was never asked
//!   about, and with one message over the answers bound;
//! - a message that is not valid protobuf for its method: INVALID_ARGUMENT;
//! - answers the switch cannot take (no decision, an unknown or switch-only
//!   reason code, a malformed id), told back on the inbox, never dropped;
//! - a client opening thousands of streams over many connections;
//! - expired, not-yet-valid and revoked client certificates (a revoked
//!   participant's open connections are cut, and a bad revocation list
//!   never lifts a revocation).

mod common;

use common::*;
use ponte_proto::v1 as pb;
use ponte_sdk::Error;
use std::time::{Duration, Instant};

/// Resident memory of this process (the switch runs in it), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb / 1024
}

/// An ordinary payment settles, and quickly: the server is still well.
/// The next event on a raw inbox stream (within 5 s).
async fn next_event(down: &mut tonic::Streaming<pb::InboxDown>) -> pb::inbox_event::Event {
    let message = tokio::time::timeout(Duration::from_secs(5), down.message()).await.unwrap().unwrap().unwrap();
    message.events.into_iter().next().unwrap().event.unwrap()
}

async fn still_serves(switch: &TestSwitch) {
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), a.submit(&payment(&a, B, "1.00"))).await;
    assert!(matches!(outcome, Ok(Ok(ref o)) if o.is_settled()), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    inbox.stop().await;
}

fn request(amount: &str) -> pb::PaymentRequest {
    pb::PaymentRequest {
        end_to_end_id: payment_id(A).to_string(),
        payer: Some(ponte_sdk::wire::account_to_wire(&account(A, "1"))),
        payee: Some(pb::Payee {
            target: Some(pb::payee::Target::Account(ponte_sdk::wire::account_to_wire(&account(B, "2")))),
        }),
        amount: amount.into(),
        currency: "BRL".into(),
        remittance: String::new(),
        lookup_by: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_fields_get_clear_errors() {
    let switch = TestSwitch::start().await;
    let channel = switch.identity(&A.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut raw = pb::payments_client::PaymentsClient::new(channel).max_encoding_message_size(64 << 20);
    // A message over the 4 MiB bound: refused by the transport, not read.
    let mut huge = request("1.00");
    huge.remittance = "x".repeat(5 << 20);
    let status = raw.submit(huge).await.unwrap_err();
    assert!(matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{status:?}");
    // Fields far over their bounds: named in the error, nothing executed.
    let mut cases: Vec<(&str, pb::PaymentRequest)> = Vec::new();
    let mut r = request("1.00");
    r.end_to_end_id = "E".repeat(100_000);
    cases.push(("end_to_end_id", r));
    let mut r = request("1.00");
    r.payer.as_mut().unwrap().number = "9".repeat(100_000);
    cases.push(("payer", r));
    let mut r = request(&"9".repeat(100_000));
    r.currency = "BRL".into();
    cases.push(("amount", r));
    let mut r = request("1.00");
    r.payee = Some(pb::Payee {
        target: Some(pb::payee::Target::Key(pb::Key { r#type: pb::KeyType::Email as i32, value: "a".repeat(1 << 20) })),
    });
    cases.push(("payee.key", r));
    for (field, request) in cases {
        let started = Instant::now();
        let status = raw.submit(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().starts_with(field), "{field}: {}", status.message());
        assert!(status.message().len() < 300, "{field}: the error does not echo the input");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert!(all.iter().all(|p| p.position.minor() == 0 && p.reserved.minor() == 0));
    still_serves(&switch).await;
    switch.stop().await;
}

/// A message of another shape: field 1 a varint where `StatusRequest`
/// has a string.
#[derive(Clone, PartialEq, prost::Message)]
struct WrongWireType {
    #[prost(uint64, tag = "1")]
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_valid_protobuf_is_invalid_argument() {
    let switch = TestSwitch::start().await;
    let channel = switch.identity(&A.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<WrongWireType, pb::TransferStatus>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/ponte.v1.Payments/GetStatus");
    let status = grpc.unary(tonic::Request::new(WrongWireType { n: 5 }), path, codec).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("not valid protobuf"), "{}", status.message());
    use tonic_types::StatusExt;
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!((info.reason.as_str(), info.domain.as_str()), ("MALFORMED_MESSAGE", "ponte.v1"));
    still_serves(&switch).await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_switch_cannot_take_are_told_back_and_decide_nothing() {
    let switch = TestSwitch::start().await;
    let a = switch.client(A).await;
    let channel = switch.identity(&B.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut raw = pb::payments_client::PaymentsClient::new(channel);
    let (up, up_rx) = tokio::sync::mpsc::channel::<pb::InboxUp>(8);
    let mut down = raw.inbox(tokio_stream::wrappers::ReceiverStream::new(up_rx)).await.unwrap().into_inner();
    let paying = tokio::spawn({
        let a = a.clone();
        async move { a.submit(&payment(&a, B, "2.00")).await.unwrap() }
    });
    let pb::inbox_event::Event::Payment(incoming) = next_event(&mut down).await else { panic!("a payment first") };
    let id = incoming.end_to_end_id.clone();
    let answer = |decision: pb::Decision, reason: &str, id: &str| pb::InboxUp {
        answers: vec![pb::PayeeAnswer {
            end_to_end_id: id.to_owned(),
            decision: decision as i32,
            reject_reason: reason.to_owned(),
            reject_code: 0,
        }],
    };
    for (bad, field) in [
        (answer(pb::Decision::Unspecified, "", &id), "DECISION_UNSPECIFIED"),
        (
            pb::InboxUp {
                answers: vec![pb::PayeeAnswer {
                    decision: 7,
                    ..answer(pb::Decision::Accept, "", &id).answers[0].clone()
                }],
            },
            "decision",
        ),
        (answer(pb::Decision::Reject, "XX99", &id), "reject_reason"),
        (answer(pb::Decision::Reject, "", &id), "reject_reason"),
        (answer(pb::Decision::Reject, "AM04", &id), "reject_reason"), // the switch's code, not a payee's
        (answer(pb::Decision::Accept, "", "not-an-id"), "end_to_end_id"),
        // The reason as the enum: a number it does not have, or one that
        // disagrees with the text, is refused, never read as a default.
        (
            pb::InboxUp {
                answers: vec![pb::PayeeAnswer {
                    reject_code: 99,
                    ..answer(pb::Decision::Reject, "", &id).answers[0].clone()
                }],
            },
            "unknown ReasonCode value 99",
        ),
        (
            pb::InboxUp {
                answers: vec![pb::PayeeAnswer {
                    reject_code: pb::ReasonCode::Ac04 as i32,
                    ..answer(pb::Decision::Reject, "AC03", &id).answers[0].clone()
                }],
            },
            "the enum says AC04 and the text AC03",
        ),
    ] {
        up.send(bad).await.unwrap();
        let pb::inbox_event::Event::Refused(refused) = next_event(&mut down).await else { panic!("refused") };
        assert!(refused.error.contains(field), "{field}: {}", refused.error);
    }
    assert!(!paying.is_finished(), "nothing was decided by the refused answers");
    // A correct answer decides it: the reason as the enum alone.
    let by_enum = pb::PayeeAnswer {
        reject_code: pb::ReasonCode::Ac03 as i32,
        ..answer(pb::Decision::Reject, "", &id).answers[0].clone()
    };
    up.send(pb::InboxUp { answers: vec![by_enum] }).await.unwrap();
    let outcome = paying.await.unwrap();
    assert!(
        matches!(
            outcome,
            ponte_sdk::PaymentOutcome::Rejected { reason: ponte_domain::ReasonCode::InvalidCreditorAccount, .. }
        ),
        "{outcome:?}"
    );
    let refused =
        switch.switch.as_ref().unwrap().engine.stats().answers_refused.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refused, 8);
    drop(up);
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payee_flooding_its_inbox_is_ignored_and_counted_then_cut_off() {
    let switch = TestSwitch::start().await;
    let channel = switch.identity(&B.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut raw = pb::payments_client::PaymentsClient::new(channel).max_encoding_message_size(64 << 20);
    let answer = |n: u64| pb::PayeeAnswer {
        end_to_end_id: format!("E{B}202611262155{n:011}"),
        decision: pb::Decision::Accept as i32,
        reject_reason: String::new(),
        reject_code: 0,
    };
    // 100,000 answers for ids B was never asked about, in bounded messages.
    let messages: Vec<pb::InboxUp> =
        (0..25).map(|m| pb::InboxUp { answers: (0..4_000).map(|i| answer(m * 4_000 + i)).collect() }).collect();
    let before = rss_mib();
    let mut down = raw.inbox(tokio_stream::iter(messages)).await.unwrap().into_inner();
    // The stream stays open (nothing wrong with the messages' size); the
    // answers change nothing. Give the switch a moment, then check.
    let _ = tokio::time::timeout(Duration::from_secs(2), down.message()).await;
    let ignored =
        switch.switch.as_ref().unwrap().engine.stats().answers_ignored.load(std::sync::atomic::Ordering::Relaxed);
    assert!(ignored >= 90_000, "unknown answers are counted: {ignored}");
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert!(all.iter().all(|p| p.position.minor() == 0), "unknown answers moved money");
    // One message over the answers bound: that inbox stream is closed.
    let over = pb::InboxUp { answers: (0..5_000).map(answer).collect() };
    let channel = switch.identity(&B.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut raw = pb::payments_client::PaymentsClient::new(channel).max_encoding_message_size(64 << 20);
    let result = raw.inbox(tokio_stream::iter(vec![over])).await;
    let closed = match result {
        Err(status) => status.code() == tonic::Code::InvalidArgument,
        Ok(response) => {
            let mut down = response.into_inner();
            matches!(tokio::time::timeout(Duration::from_secs(5), down.message()).await, Ok(Err(s)) if s.code() == tonic::Code::InvalidArgument)
        }
    };
    assert!(closed, "an answers batch over the bound closes the stream with INVALID_ARGUMENT");
    assert!(rss_mib() < before + 256, "memory bounded: {} MiB -> {} MiB", before, rss_mib());
    still_serves(&switch).await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_streams_over_many_connections_leave_the_server_well() {
    let switch = TestSwitch::start().await;
    let before = rss_mib();
    let identity = switch.identity(&A.to_string());
    let mut held = Vec::new();
    // 50 connections x 60 open submit streams = 3,000 streams, each idle.
    for _ in 0..50 {
        let channel = identity.channel(&switch.endpoint()).await.unwrap();
        for _ in 0..60 {
            let mut raw = pb::payments_client::PaymentsClient::new(channel.clone());
            let (tx, rx) = tokio::sync::mpsc::channel::<pb::SubmitBatch>(1);
            let call =
                tokio::spawn(async move { raw.submit_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
            held.push((tx, call));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = rss_mib();
    eprintln!("{} streams open: {before} MiB -> {during} MiB", held.len());
    assert!(during < before + 512, "memory bounded with 3,000 idle streams: {before} -> {during} MiB");
    still_serves(&switch).await;
    drop(held);
    let a = switch.client(A).await;
    assert!(matches!(a.status(&payment_id(A)).await, Err(Error::NotFound(_))));
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
    let switch = TestSwitch::start().await;
    let certs = switch.certs();
    let ca_pem = std::fs::read_to_string(certs.join("ca.pem")).unwrap();
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(certs.join("ca.key")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Signed by the switch's own CA and naming a real participant: only the
    // validity period is wrong.
    for (label, not_before, not_after) in
        [("expired", (2020, 1, 1), (2021, 1, 1)), ("not yet valid", (2040, 1, 1), (2041, 1, 1))]
    {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, A.to_string());
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.path().join(format!("{label}.pem")), dir.path().join(format!("{label}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let identity = ponte_sdk::Identity::from_files(&certs.join("ca.pem"), &cert_path, &key_path).unwrap();
        let attempt = async {
            let client = ponte_sdk::Client::connect(&switch.endpoint(), pid(A), &identity).await?;
            client.submit(&payment(&client, B, "1.00")).await
        };
        let result = tokio::time::timeout(Duration::from_secs(20), attempt).await;
        // Refused, and said so: a clear error no retry can change (it once
        // came back as a retryable UNAVAILABLE).
        match result {
            Ok(Err(error @ Error::Unauthenticated(_))) => {
                assert!(!error.is_retryable());
                assert!(error.to_string().contains("refused this participant's certificate"), "{error}");
            }
            other => panic!("{label} certificate: {other:?}"),
        }
    }
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert!(all.iter().all(|p| p.position.minor() == 0 && p.reserved.minor() == 0));
    still_serves(&switch).await;
    switch.stop().await;
}

/// Pays `amount` from `payer` to `payee` and returns the outcome, bounded.
async fn pay(payer: &ponte_sdk::Client, payee: u32, amount: &str) -> Result<ponte_sdk::PaymentOutcome, String> {
    match tokio::time::timeout(Duration::from_secs(10), payer.submit(&payment(payer, payee, amount))).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer in 10 s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_cut_off_at_once_and_refused_afterwards() {
    let switch = TestSwitch::start().await;
    let (a, b, c) = (switch.client(A).await, switch.client(B).await, switch.client(C).await);
    let inbox_b = Payee::accepting().serve(&b).await;
    let inbox_c = Payee::accepting().serve(&c).await;
    assert!(pay(&a, B, "1.00").await.unwrap().is_settled(), "B is paid before the revocation");

    // The operator revokes B's certificate while B has its inbox (and a
    // client connection) open.
    let pki = ponte_switch::net::tls::DevPki::new(switch.certs());
    assert_eq!(pki.revoke(&B.to_string()).unwrap(), 1);
    assert_eq!(pki.revoke(&B.to_string()).unwrap(), 1, "revoking twice changes nothing");

    // Within the CRL check interval B's open inbox is closed: payments to B
    // are refused as payee offline instead of being delivered.
    let started = Instant::now();
    loop {
        let outcome = pay(&a, B, "1.00").await.unwrap();
        if outcome == (ponte_sdk::PaymentOutcome::Rejected { reason: ponte_sdk::ReasonCode::PayeeOffline }) {
            break;
        }
        assert!(outcome.is_settled(), "{outcome:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B's inbox still open {:?} after revocation",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cut_after = started.elapsed();

    // B's existing client and a fresh connection with B's certificate are refused.
    assert!(pay(&b, A, "1.00").await.is_err(), "B's old connection still pays");
    let fresh = async {
        let client = ponte_sdk::Client::connect(&switch.endpoint(), pid(B), &switch.identity(&B.to_string())).await?;
        client.submit(&payment(&client, A, "1.00")).await
    };
    let fresh = tokio::time::timeout(Duration::from_secs(20), fresh).await;
    assert!(!matches!(fresh, Ok(Ok(_))), "B's revoked certificate opened a new connection: {fresh:?}");

    // A bad replacement list is refused and the revocation stays in force;
    // everyone else is served throughout.
    std::fs::write(pki.crl(), "-----BEGIN X509 CRL-----\nnot a list\n-----END X509 CRL-----\n").unwrap();
    tokio::time::sleep(ponte_switch::net::acceptor::CRL_CHECK * 2).await;
    let fresh = async {
        let client = ponte_sdk::Client::connect(&switch.endpoint(), pid(B), &switch.identity(&B.to_string())).await?;
        client.submit(&payment(&client, A, "1.00")).await
    };
    let fresh = tokio::time::timeout(Duration::from_secs(20), fresh).await;
    assert!(!matches!(fresh, Ok(Ok(_))), "a garbled CRL lifted the revocation: {fresh:?}");
    assert!(pay(&a, C, "2.00").await.unwrap().is_settled(), "A still pays C");
    assert!(pay(&c, A, "1.00").await.is_ok(), "C's own connection is unaffected");

    // Nothing is left half-done: positions net to zero, nothing reserved.
    let (all, _) = switch.operator().await.participants().await.unwrap();
    assert_eq!(all.iter().map(|p| p.position.minor()).sum::<i64>(), 0);
    assert!(all.iter().all(|p| p.reserved.minor() == 0), "{all:?}");
    eprintln!("revoked connection cut {cut_after:?} after the revocation");
    drop(inbox_b);
    inbox_c.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_refuses_to_start_on_an_unreadable_revocation_list() {
    let mut switch = TestSwitch::start().await;
    switch.switch.take().unwrap().stop().await;
    std::fs::write(switch.config.certs_dir().join("crl.pem"), "garbage").unwrap();
    let error = ponte_switch::server::start(switch.config.clone()).await.err().expect("start refused").to_string();
    assert!(error.contains("crl.pem") && error.contains("CRL"), "{error}");
}

/// Errors carry google.rpc.Status details any gRPC stack reads: an
/// ErrorInfo (domain ponte.v1, a stable reason), a BadRequest naming the
/// field of an INVALID_ARGUMENT, a RetryInfo where waiting helps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_structured_details() {
    use tonic_types::StatusExt;
    let switch = TestSwitch::start().await;
    let channel = switch.identity(&A.to_string()).channel(&switch.endpoint()).await.unwrap();
    let mut payments = pb::payments_client::PaymentsClient::new(channel.clone());
    let reason_of = |status: &tonic::Status| {
        let info = status.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.domain, "ponte.v1");
        info.reason
    };

    // A malformed field: INVALID_ARGUMENT, the field in a BadRequest.
    let a = switch.client(A).await;
    let mut request = pb::PaymentRequest {
        end_to_end_id: payment_id(A).to_string(),
        payer: Some(ponte_wire::account_to_wire(&account(A, "1"))),
        payee: Some(pb::Payee {
            target: Some(pb::payee::Target::Account(ponte_wire::account_to_wire(&account(B, "2")))),
        }),
        amount: "1.001".into(),
        currency: "BRL".into(),
        ..Default::default()
    };
    let status = payments.submit(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(reason_of(&status), "INVALID_FIELD");
    let violations = status.get_details_bad_request().expect("a BadRequest").field_violations;
    assert_eq!(violations[0].field, "amount", "{violations:?}");

    // Acting as another participant: PERMISSION_DENIED with its reason.
    request.amount = "1.00".into();
    request.end_to_end_id = payment_id(B).to_string();
    let status = payments.submit(request).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (tonic::Code::PermissionDenied, "PERMISSION_DENIED".into()));

    // An id never seen: NOT_FOUND with its reason.
    let unknown = pb::StatusRequest { end_to_end_id: payment_id(A).to_string() };
    let status = payments.get_status(unknown).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (tonic::Code::NotFound, "NOT_FOUND".into()));

    // A rate-limited lookup: RESOURCE_EXHAUSTED with when to try again.
    let mut directory = pb::directory_client::DirectoryClient::new(channel);
    let lookup = pb::LookupKeyRequest {
        key: Some(pb::Key { r#type: pb::KeyType::Phone as i32, value: "+5561900000000".into() }),
        end_user: Some(pb::EndUser { kind: pb::OwnerKind::Person as i32, id: "11144477735".into() }),
    };
    let mut limited = None;
    for _ in 0..10 {
        match directory.lookup_key(lookup.clone()).await {
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                limited = Some(status);
                break;
            }
            Err(status) => assert_eq!(reason_of(&status), "KEY_NOT_FOUND"),
            Ok(found) => panic!("{found:?}"),
        }
    }
    let status = limited.expect("the end user's lookups run out");
    assert_eq!(reason_of(&status), "END_USER_LOOKUPS_LIMITED");
    let retry = status.get_details_retry_info().expect("a RetryInfo").retry_delay;
    assert_eq!(retry, Some(Duration::from_secs(600)));
    drop(a);
    switch.stop().await;
}
