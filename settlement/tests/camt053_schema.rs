//! Every cycle statement Ponte writes validates against the official
//! ISO 20022 schema of the version it declares (`camt.053.001.08`), checked
//! by a validator nobody here wrote: `xmllint --schema` (Debian's
//! libxml2-utils; `scripts/test-all` installs it). The edge cases are the
//! ones a central bank meets: a quiet hour (no movement at all), a single
//! payment, a cycle of returns only, a cycle still open, a confirmed one,
//! the largest amounts, a cycle id of 20 digits, and a busy cycle.

use ponte_domain::{Amount, EndToEndId, IdKind, ParticipantId};
use ponte_settlement::Movement;
use ponte_settlement::report::{CycleHeader, CycleReport, CycleStatus, SettledMovement, build};
use std::path::{Path, PathBuf};
use std::process::Command;

const T0: i64 = 1_795_730_000_000;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../iso20022/xsd/camt.053.001.08.xsd")
}

/// Runs xmllint on `xml`; Err with its words when the schema refuses it.
fn validate(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("statement.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema())
        .arg(&file)
        .output()
        .expect("xmllint must be installed (Debian: libxml2-utils; scripts/test-all installs it)");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn pid(code: u32) -> ParticipantId {
    ParticipantId::new(code).unwrap()
}

fn movement(kind: IdKind, n: u64, payer: u32, payee: u32, minor: i64) -> SettledMovement {
    let suffix = format!("{n:011}");
    SettledMovement {
        id: EndToEndId::from_parts(kind, pid(payer), T0 + 60_000, suffix.as_bytes().try_into().unwrap()),
        movement: Movement { payer: pid(payer), payee: pid(payee), amount: Amount::from_minor(minor) },
        settled_at: T0 + 60_000 + n as i64,
    }
}

fn header(id: u64, status: CycleStatus) -> CycleHeader {
    let (closed_at, settled_at) = match status {
        CycleStatus::Open => (None, None),
        CycleStatus::Closed => (Some(T0 + 3_600_000), None),
        CycleStatus::Settled => (Some(T0 + 3_600_000), Some(T0 + 3_700_000)),
    };
    CycleHeader { id, status, opened_at: T0, closed_at, settled_at }
}

/// The statement's closing balances by account, signed (DBIT negative).
fn closing_balances(xml: &str) -> Vec<(String, String, Amount)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut account = String::new();
    let (mut code, mut amount, mut out) = (String::new(), String::new(), Vec::new());
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => path.push(e.name().as_ref().to_owned()),
            Event::End(_) => {
                if path.last().map(String::as_str) == Some("Bal") {
                    let value = Amount::parse_signed(&amount).unwrap();
                    out.push((account.clone(), code.clone(), value));
                }
                path.pop();
            }
            Event::Text(t) => {
                let text = t.to_string();
                let tail: Vec<&str> = path.iter().rev().take(4).map(String::as_str).collect();
                match tail.as_slice() {
                    ["Id", "Othr", "Id", "Acct"] => account = text,
                    ["Cd", "CdOrPrtry", "Tp", "Bal"] => code = text,
                    ["Amt", "Bal", ..] => amount = text,
                    ["CdtDbtInd", "Bal", ..] if text == "DBIT" => amount = format!("-{amount}"),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn check(report: &CycleReport) -> String {
    let xml = report.to_camt053();
    validate(&xml)
        .unwrap_or_else(|e| panic!("cycle {} fails the camt.053.001.08 schema:\n{e}\n{xml}", report.header.id));
    // What it says adds up: each participant's closing balance is its net
    // position, and the positions net to exactly zero.
    let closing = if report.header.status == CycleStatus::Open { "ITBD" } else { "CLBD" };
    let balances = closing_balances(&xml);
    let mut sum = Amount::ZERO;
    for t in &report.netting.totals {
        let found = balances
            .iter()
            .find(|(a, c, _)| *a == t.participant.to_string() && c == closing)
            .unwrap_or_else(|| panic!("no {closing} balance for {}", t.participant));
        assert_eq!(found.2, t.net_position);
        sum = sum.checked_add(found.2).unwrap();
    }
    assert_eq!(sum, Amount::ZERO);
    xml
}

#[test]
fn xmllint_refuses_a_statement_the_schema_does_not_allow() {
    // The check can fail: without its `Stmt` (as an empty cycle's statement
    // once was), or with a negative amount, the document is refused.
    let report = build(header(1, CycleStatus::Closed), vec![]).unwrap();
    let xml = report.to_camt053();
    let start = xml.find("<Stmt>").unwrap();
    let end = xml.rfind("</Stmt>").unwrap() + "</Stmt>".len();
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    assert!(validate(&without).is_err());
    let negative = build(header(2, CycleStatus::Closed), vec![movement(IdKind::Payment, 1, 10000001, 10000002, 5_00)])
        .unwrap()
        .to_camt053()
        .replace(">5.00</Amt>", ">-5.00</Amt>");
    assert!(validate(&negative).is_err());
}

#[test]
fn an_empty_cycle_gives_a_valid_statement() {
    let report = build(header(3, CycleStatus::Closed), vec![]).unwrap();
    let xml = check(&report);
    // The cycle's own statement is there, with nothing in it.
    assert_eq!(xml.matches("<Stmt>").count(), 1);
    assert!(xml.contains("<NbOfNtries>0</NbOfNtries>"));
}

#[test]
fn one_payment_between_two_participants() {
    let report =
        build(header(4, CycleStatus::Closed), vec![movement(IdKind::Payment, 1, 10000001, 10000002, 12_34)]).unwrap();
    let xml = check(&report);
    assert_eq!(xml.matches("<Stmt>").count(), 3);
}

#[test]
fn returns_only() {
    let report = build(
        header(5, CycleStatus::Closed),
        vec![movement(IdKind::Return, 1, 10000002, 10000001, 7_00), movement(IdKind::Return, 2, 10000003, 10000001, 1)],
    )
    .unwrap();
    check(&report);
}

#[test]
fn an_open_cycle_gives_interim_balances_and_a_confirmed_one_closing_balances() {
    let moves = || vec![movement(IdKind::Payment, 1, 10000001, 10000002, 1_00)];
    let open = check(&build(header(6, CycleStatus::Open), moves()).unwrap());
    assert!(open.contains("<Cd>ITBD</Cd>") && !open.contains("<Cd>CLBD</Cd>"));
    let settled = check(&build(header(6, CycleStatus::Settled), moves()).unwrap());
    assert!(settled.contains("<Cd>CLBD</Cd>") && !settled.contains("<Cd>ITBD</Cd>"));
}

#[test]
fn the_largest_amounts_and_the_longest_cycle_id() {
    // Amounts up to what 18 total digits allow with the currency's 2
    // decimals; the identifiers stay within Max35Text at a 20-digit cycle id.
    let big = 9_999_999_999_999_99; // 9,999,999,999,999.99
    let report = build(
        header(u64::MAX, CycleStatus::Closed),
        vec![
            movement(IdKind::Payment, 1, 99999999, 10000001, big),
            movement(IdKind::Payment, 2, 99999999, 10000002, big),
        ],
    )
    .unwrap();
    check(&report);
}

#[test]
fn a_busy_cycle_of_many_participants() {
    // 200,000 movements among 300 participants: the statement stays a
    // statement per participant (no entry per movement), so its size
    // follows the participants, not the movements.
    let moves: Vec<SettledMovement> = (0..200_000u64)
        .map(|n| {
            let payer = 10000001 + (n % 300) as u32;
            let payee = 10000001 + ((n * 7 + 1) % 300) as u32;
            let payee = if payee == payer { 10000001 + ((n + 1) % 300) as u32 } else { payee };
            movement(IdKind::Payment, n, payer, payee, 1 + (n % 100_000) as i64)
        })
        .collect();
    let report = build(header(8, CycleStatus::Closed), moves).unwrap();
    let xml = check(&report);
    assert_eq!(xml.matches("<Stmt>").count(), 301);
    assert!(xml.len() < 1_000_000, "{} bytes", xml.len());
}

#[test]
fn a_participants_own_statement_is_valid_and_holds_only_its_position() {
    let report = build(
        header(9, CycleStatus::Closed),
        vec![
            movement(IdKind::Payment, 1, 10000001, 10000002, 12_34),
            movement(IdKind::Payment, 2, 10000003, 10000001, 1_00),
        ],
    )
    .unwrap();
    for (code, net) in [(10000001, -11_34), (10000002, 12_34), (10000003, -1_00), (10000099, 0)] {
        let xml = report.to_camt053_for(pid(code));
        validate(&xml).unwrap_or_else(|e| panic!("{code}: {e}\n{xml}"));
        let balances = closing_balances(&xml);
        assert!(
            balances.iter().all(|(account, ..)| *account == code.to_string()),
            "{code} sees only itself: {balances:?}"
        );
        assert!(balances.contains(&(code.to_string(), "CLBD".into(), Amount::from_minor(net))), "{balances:?}");
        assert!(!xml.contains("PONTE-CYCLE-NETTING"), "no cycle-wide statement");
        assert!(xml.contains(&report.digest), "the whole cycle's digest");
    }
}
