//! `ponte demo` runs to completion as a user would start it, and its
//! positions net to zero.

mod common;

use common::validate_iso20022;

#[test]
fn demo_runs_to_completion() {
    let reports = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(["demo", "--payments", "3000", "--payee-timeout-ms", "800", "--report-dir"])
        .arg(reports.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("ponte demo starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for expected in [
        "SETTLED",
        "AB08 payee participant has no open inbox",
        "AM04 payer participant's liquidity limit would be exceeded",
        "Its end-to-end id reused with another amount: AM05",
        "...then tries to return",
        "sum of positions: 0.00",
        "Banco Atlântico looks up the phone key: Maria S. d. S. at participant 10000002",
        "...and pays 42.00 to it: SETTLED",
        "A payment to a key nobody registered: BE23",
        "Settlement cycle 1 closed",
        "net positions sum to 0.00",
        "cycle 1 SETTLED",
    ] {
        assert!(stdout.contains(expected), "demo output lacks {expected:?}:\n{stdout}");
    }
    // Anyone can check the report's zero sum from the file.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.path().join("cycle-1.json")).unwrap()).unwrap();
    let sum = json["participants"].as_array().unwrap().iter().fold(ponte_domain::Amount::ZERO, |acc, p| {
        acc.checked_add(ponte_domain::Amount::parse_signed(p["net_position"].as_str().unwrap()).unwrap()).unwrap()
    });
    assert_eq!(sum, ponte_domain::Amount::ZERO);
    assert!(json["movements"].as_u64().unwrap() > 1_000);
    assert!(reports.path().join("cycle-1.csv").exists());
    let xml = std::fs::read_to_string(reports.path().join("cycle-1.camt053.xml")).unwrap();
    validate_iso20022("camt.053.001.08.xsd", &xml).unwrap_or_else(|e| panic!("the demo's camt.053: {e}"));
}
