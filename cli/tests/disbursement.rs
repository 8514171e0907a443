//! Bulk disbursement over the real interface (gRPC, mTLS, journal; on
//! Cassandra too in the second pass of scripts/test-all).
//!
//! Proves: a mixed envelope (valid items, a key, an unknown key, a repeated
//! beneficiary, a payee rejection) gives exactly the expected report, and
//! its totals match the agency's position; the same envelope sent again pays
//! nobody again; changed content under the same reference, control-total and
//! control-count mismatches are refused whole; and a switch SIGKILLed in the
//! middle of an envelope, restarted, pays every disbursement id at most once
//! and lets the agency finish the rest.

mod common;

use common::{A, B, Payee, PonteProcess, TestSwitch, account, free_port, pid, process_clients, spawn_ponte};
use ponte_domain::{Amount, ReasonCode};
use ponte_sdk::disbursement::{Beneficiary, EnvelopeHeader, EnvelopeItem, ItemState};
use ponte_sdk::{Client, Decision, Error, KeyType, Owner, OwnerKind};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn phone(text: &str) -> Beneficiary {
    Beneficiary::Key(ponte_directory::keys::parse(&ponte_directory::keys::Brazil, KeyType::Phone, text).unwrap())
}

fn item(id: &str, beneficiary: Beneficiary, amount: &str) -> EnvelopeItem {
    EnvelopeItem {
        disbursement_id: id.into(),
        beneficiary,
        amount: Amount::parse_positive(amount).unwrap(),
        narrative: "Bolsa dezembro".into(),
    }
}

fn header(reference: &str, items: &[EnvelopeItem]) -> EnvelopeHeader {
    EnvelopeHeader {
        agency: pid(A),
        reference: reference.into(),
        programme: "Bolsa Teste".into(),
        cycle_reference: "2026-12".into(),
        currency: "BRL".into(),
        paying_account: account(A, "1"),
        control_count: items.len() as u32,
        control_total: items.iter().try_fold(Amount::ZERO, |sum, i| sum.checked_add(i.amount)).unwrap(),
    }
}

/// The envelope digest recomputed from the words of `ponte.proto`
/// (`EnvelopeStatus.digest`) alone, as a client in any language would.
fn digest_from_the_proto_words(h: &EnvelopeHeader, items: &[EnvelopeItem]) -> String {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::new();
    let mut field = |text: &str| {
        bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
        bytes.extend_from_slice(text.as_bytes());
    };
    let account = |a: &ponte_domain::Account| {
        let kind = match a.kind {
            ponte_domain::AccountType::Checking => "CHECKING",
            ponte_domain::AccountType::Savings => "SAVINGS",
            ponte_domain::AccountType::Payment => "PAYMENT",
            ponte_domain::AccountType::Salary => "SALARY",
        };
        format!("{}/{:04}/{}/{kind}", a.participant, a.branch, a.number())
    };
    field("ponte-envelope-digest-v1");
    field(&h.agency.to_string());
    field(&h.reference);
    field(&h.programme);
    field(&h.cycle_reference);
    field(&account(&h.paying_account));
    field(&h.control_count.to_string());
    field(&format!("{}", h.control_total));
    field(&h.currency);
    for item in items {
        field(&item.disbursement_id);
        field(&match &item.beneficiary {
            Beneficiary::Key(key) => format!("key/{}/{}", key.kind().as_str(), key.value()),
            Beneficiary::Account(a) => format!("account/{}", account(a)),
        });
        field(&item.amount.to_string());
        field(&item.narrative);
    }
    let hash = Sha256::digest(&bytes);
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_complete(client: &Client, reference: &str, within: Duration) -> ponte_sdk::disbursement::EnvelopeStatus {
    let deadline = Instant::now() + within;
    loop {
        let status = client.envelope(reference).await.unwrap();
        if status.complete {
            return status;
        }
        assert!(Instant::now() < deadline, "envelope not complete in {within:?}: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_envelope_gives_the_exact_report() {
    let switch = TestSwitch::start().await;
    let (agency, b) = (switch.client(A).await, switch.client(B).await);
    let maria = Owner { kind: OwnerKind::Person, id: "529.982.247-25".into(), name: "Maria Souza".into() };
    b.register_key(KeyType::Phone, "+5561988880000", &account(B, "4242"), &maria).await.unwrap();
    let payee = Payee::deciding(|p| {
        if p.payee.number() == "99" { Decision::Reject(ReasonCode::ClosedAccount) } else { Decision::Accept }
    });
    let inbox = payee.serve(&b).await;
    let items = vec![
        item("D1", Beneficiary::Account(account(B, "10")), "10.00"),
        item("D2", phone("+5561988880000"), "20.00"),
        item("D3", phone("+5561900000000"), "30.00"),
        item("D4", Beneficiary::Account(account(B, "10")), "40.00"),
        item("D5", Beneficiary::Account(account(B, "99")), "50.00"),
    ];
    let h = header("ENV-MIXED", &items);
    let accepted = agency.submit_envelope(&h, items.clone()).await.unwrap();
    assert!(accepted.sealed);
    assert_eq!(accepted.digest, digest_from_the_proto_words(&h, &items), "the digest follows the .proto's words");
    assert_eq!((accepted.received, accepted.control_total.as_str()), (5, "150.00"));
    let done = wait_complete(&agency, "ENV-MIXED", Duration::from_secs(20)).await;
    assert_eq!((done.paid_count, done.paid_value.as_str()), (2, "30.00"));
    assert_eq!((done.failed_count, done.failed_value.as_str()), (3, "120.00"));

    let report = agency.envelope_report("ENV-MIXED").await.unwrap();
    let row = |i: usize| (report.items[i].state, report.items[i].reason.as_str());
    assert_eq!(row(0), (ItemState::Paid, ""));
    assert_eq!(row(1), (ItemState::Paid, ""));
    assert!(
        report.items[1].payee.starts_with(&B.to_string()) && report.items[1].payee.ends_with("/4242"),
        "paid to the account behind the key: {}",
        report.items[1].payee
    );
    assert_eq!(row(2), (ItemState::Failed, "BE23"));
    assert_eq!(row(3), (ItemState::Failed, "DUPL"));
    assert!(report.items[3].end_to_end_id.is_empty(), "a flagged item is never paid");
    assert_eq!(row(4), (ItemState::Failed, "AC04"));
    let csv = report.to_csv();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.lines().nth(4).unwrap().contains("DUPL"), "{csv}");
    assert!(report.to_json().contains("\"paid_value\": \"30.00\""));

    // The agency's position is what the report says it paid, and so is its
    // line in the settlement cycle's report: two payments sent, 30.00.
    let operator = switch.operator().await;
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::from_minor(-30_00));
    let cycle = operator.close_cycle().await.unwrap();
    let (_, json) = operator.cycle_report(cycle.id, ponte_sdk::ReportFormat::Json).await.unwrap();
    let cycle_report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let agency_line = cycle_report["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["participant"].as_str() == Some(&A.to_string()))
        .expect("the agency has a line in the cycle report")
        .clone();
    assert_eq!(agency_line["sent_count"].as_u64(), Some(u64::from(done.paid_count)), "{agency_line}");
    assert_eq!(agency_line["sent_value"].as_str(), Some(done.paid_value.as_str()), "{agency_line}");
    assert_eq!(agency_line["net_position"].as_str(), Some("-30.00"), "{agency_line}");
    // The same envelope again: its status, nobody paid again.
    let again = agency.submit_envelope(&h, items.clone()).await.unwrap();
    assert_eq!((again.paid_count, again.failed_count), (2, 3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::from_minor(-30_00));
    assert_eq!(payee.seen.lock().unwrap().len(), 3, "the payee was asked once per paid or rejected item");
    // The same reference with other content: refused.
    let mut changed = items.clone();
    changed[0].amount = Amount::parse_positive("11.00").unwrap();
    let error = agency.submit_envelope(&header("ENV-MIXED", &changed), changed).await.unwrap_err();
    assert!(matches!(error, Error::AlreadyExists(_)), "{error}");
    // Someone else cannot read it.
    assert!(matches!(b.envelope("ENV-MIXED").await, Err(Error::NotFound(_))));
    inbox.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_that_does_not_match_its_control_totals_is_refused_whole() {
    let switch = TestSwitch::start().await;
    let agency = switch.client(A).await;
    let items = vec![
        item("X1", Beneficiary::Account(account(B, "1")), "1.00"),
        item("X2", Beneficiary::Account(account(B, "2")), "2.00"),
    ];
    let mut wrong_total = header("ENV-T", &items);
    wrong_total.control_total = Amount::parse_positive("4.00").unwrap();
    let error = agency.submit_envelope(&wrong_total, items.clone()).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidArgument(m) if m.contains("control total")), "{error}");
    let mut wrong_count = header("ENV-C", &items);
    wrong_count.control_count = 3;
    let error = agency.submit_envelope(&wrong_count, items.clone()).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidArgument(m) if m.contains("control count")), "{error}");
    let repeated = vec![items[0].clone(), items[0].clone()];
    let error = agency.submit_envelope(&header("ENV-R", &repeated), repeated).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidArgument(m) if m.contains("more than once")), "{error}");
    let mut other_agency = header("ENV-O", &items);
    other_agency.agency = pid(B);
    let error = agency.submit_envelope(&other_agency, items.clone()).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidArgument(m) if m.contains("agency")), "{error}");
    for reference in ["ENV-T", "ENV-C", "ENV-R", "ENV-O"] {
        assert!(matches!(agency.envelope(reference).await, Err(Error::NotFound(_))), "{reference} left a trace");
    }
    let operator = switch.operator().await;
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::ZERO);
    switch.stop().await;
}

fn spawn_server(dir: &Path, port: u16, store: Option<&str>) -> PonteProcess {
    let config = dir.join("ponte.toml");
    spawn_ponte(dir, port, store, &["--config", config.to_str().unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_killed_mid_envelope_pays_nobody_twice_and_the_rest_gets_paid() {
    let dir = tempfile::tempdir().unwrap();
    // A slow pace so the kill lands mid-envelope; a generous cap for the agency.
    std::fs::write(
        dir.path().join("ponte.toml"),
        "[engine]\npayee_timeout_ms = 1500\n\n[runtime]\ndisbursement_per_s = 400\n\n\
         [[dev_participants]]\ncode = \"10000001\"\nname = \"Ministry\"\nnet_debit_cap = \"10000000.00\"\n\n\
         [[dev_participants]]\ncode = \"10000002\"\nname = \"Bank B\"\nnet_debit_cap = \"1000.00\"\n",
    )
    .unwrap();
    let store = common::test_store("disburse");
    let port = free_port();
    let server = spawn_server(dir.path(), port, store.as_deref());
    let (agency, b, _) = process_clients(dir.path(), &server.endpoint).await;
    let inbox = Payee::accepting().serve(&b).await;
    let count = 1_000;
    let items: Vec<EnvelopeItem> = (0..count)
        .map(|i| item(&format!("K{i:05}"), Beneficiary::Account(account(B, &format!("{}", 1000 + i))), "1.25"))
        .collect();
    let h = header("ENV-KILL", &items);
    agency.submit_envelope(&h, items.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before = agency.envelope("ENV-KILL").await.unwrap();
    assert!(before.done() > 0 && before.done() < count, "the kill must land mid-envelope: {before:?}");
    drop(server); // SIGKILL
    inbox.stop().await;

    let server = spawn_server(dir.path(), port, store.as_deref());
    let (agency, b, operator) = process_clients(dir.path(), &server.endpoint).await;
    let inbox = Payee::accepting().serve(&b).await;
    // The agency sends the same envelope again after the outage: the
    // switch answers with the one it has and goes on paying it.
    let again = agency.submit_envelope(&h, items.clone()).await.unwrap();
    assert!(again.sealed);
    let done = wait_complete(&agency, "ENV-KILL", Duration::from_secs(30)).await;
    let report = agency.envelope_report("ENV-KILL").await.unwrap();
    let ids: HashSet<&str> =
        report.items.iter().filter(|i| !i.end_to_end_id.is_empty()).map(|i| i.end_to_end_id.as_str()).collect();
    assert_eq!(ids.len(), report.items.iter().filter(|i| !i.end_to_end_id.is_empty()).count(), "one payment per item");
    // Items whose payment was in flight at the kill timed out (AB03, transient).
    let failed: Vec<EnvelopeItem> = report
        .items
        .iter()
        .filter(|i| i.state == ItemState::Failed)
        .map(|i| {
            assert_eq!(i.reason, "AB03", "{i:?}");
            items[i.index as usize].clone()
        })
        .collect();
    assert_eq!(done.paid_count as usize + failed.len(), count as usize);
    let paid_minor = i64::from(done.paid_count) * 1_25;
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::from_minor(-paid_minor));
    // Those are paid by a follow-up envelope; the paid ones cannot be.
    if !failed.is_empty() {
        let retry = agency.submit_envelope(&header("ENV-KILL-2", &failed), failed.clone()).await.unwrap();
        assert_eq!(retry.failed_count, 0);
        wait_complete(&agency, "ENV-KILL-2", Duration::from_secs(30)).await;
    }
    let all_again = agency.submit_envelope(&header("ENV-KILL-3", &items), items.clone()).await.unwrap();
    assert_eq!(all_again.failed_count, count, "every disbursement id is paid already: all DUPL");
    assert_eq!(operator.participant(pid(A)).await.unwrap().position, Amount::from_minor(-(count as i64) * 1_25));
    let (_, sum) = operator.participants().await.unwrap();
    assert_eq!(sum, Amount::ZERO);
    inbox.stop().await;
    drop(server);
}
