//! `ponte demo` runs to completion as a user would start it, and its
//! positions net to zero.

#[test]
fn demo_runs_to_completion() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(["demo", "--payments", "3000", "--payee-timeout-ms", "800"])
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
    ] {
        assert!(stdout.contains(expected), "demo output lacks {expected:?}:\n{stdout}");
    }
}
