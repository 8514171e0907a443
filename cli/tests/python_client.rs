//! A bank not on Rust: the Python client in `clients/python` (grpcio, stubs
//! generated from the published `.proto` at start) pays, runs an inbox,
//! has the operator close the cycle and reconciles it by pages, against a
//! real switch over gRPC with mTLS. Needs python3 with grpcio and
//! grpcio-tools (`scripts/test-all` installs them).

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_pays_and_reconciles_a_cycle_by_pages() {
    let switch = TestSwitch::start().await;
    let endpoint = switch.endpoint();
    let target = endpoint.trim_start_matches("https://").to_owned();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python/ponte_client.py");
    let certs = switch.certs();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(&script)
            .args(["demo", "--endpoint", &target, "--payments", "250", "--page-size", "60", "--certs"])
            .arg(&certs)
            .output()
            .expect("python3 runs (with grpcio and grpcio-tools: scripts/test-all installs them)")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the Python client failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&output.stdout));
    });
    assert_eq!(report["settled"], 250, "{report}");
    assert_eq!(report["transfers"], 250, "{report}");
    assert_eq!(report["distinct"], 250, "{report}");
    assert_eq!(report["pages"], 5, "250 in pages of 60: {report}");
    assert_eq!(report["sent_value_minor"], 250, "{report}");
    assert_eq!(report["bad_token"], "INVALID_ARGUMENT", "{report}");
    assert_eq!(report["answers_refused"].as_array().map(Vec::len), Some(0), "{report}");
    // The same cycle as the Rust SDK reads it.
    let cycle = report["cycle"].as_u64().unwrap();
    let a = switch.client(A).await;
    assert_eq!(a.cycle_transfers(cycle).await.unwrap().len(), 250);
    switch.stop().await;
}
