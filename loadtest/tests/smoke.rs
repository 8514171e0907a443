//! Smoke run of the load test as a user runs it (own switch, mTLS, fsync):
//! a few seconds with a 3,000-item disbursement envelope beside it,
//! asserting only that payments settle, the envelope reconciles and the
//! report and chart are written — not speed.

#[test]
fn a_short_load_test_settles_payments_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ponte-loadtest"))
        .args([
            "--duration",
            "2s",
            "--warmup",
            "1s",
            "--echo-seconds",
            "1",
            "--participants",
            "5",
            "--keys",
            "2000",
            "--envelope",
            "3000",
            "--transfers-capacity",
            "100000",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("ponte-loadtest starts");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(report["settled"].as_u64().unwrap() > 100, "{report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    assert_eq!(report["keys"].as_u64(), Some(2000));
    assert_eq!(report["transfers_capacity"].as_u64(), Some(100_000), "the switch's table was sized as asked");
    assert!(report["rejects_by_reason"].get("BE23").is_none(), "every key paid exists: {report}");
    assert!(report["rejects_by_reason"].get("AG01").is_none(), "no payment to oneself: {report}");
    assert!(report["rejects_by_reason"].get("RC07").is_none(), "no payment to an unknown participant: {report}");
    assert!(report["throughput_per_s"].as_f64().unwrap() > 0.0);
    // The switch counted its stream messages: every kind flowed, and each
    // message carried at least one item.
    for kind in ["submits", "results", "inbox", "answers"] {
        let traffic = &report["stream_messages"][kind];
        assert!(traffic["messages_per_s"].as_f64().unwrap() > 0.0, "{kind}: {report}");
        assert!(traffic["items_per_message"].as_f64().unwrap() >= 1.0, "{kind}: {report}");
    }
    for field in ["p50", "p90", "p99", "p999", "max"] {
        assert!(report["latency_ms"][field].as_f64().unwrap() > 0.0, "latency_ms.{field}");
    }
    assert!(report["echo_ceiling_per_s"].as_f64().unwrap() > 0.0);
    // The CPU the run had: this process was busy, and the steal is a share.
    let cpu = &report["machine"]["cpu"];
    let cores = report["machine"]["cores"].as_f64().unwrap();
    let busy = cpu["process_cores"].as_f64().unwrap();
    assert!(busy > 0.0 && busy <= cores + 0.01, "{report}");
    assert!((0.0..=1.0).contains(&cpu["steal_share"].as_f64().unwrap()), "{report}");
    // The envelope paid beside the load reconciles with its control totals.
    let envelope = &report["envelope"];
    assert_eq!(envelope["items"].as_u64(), Some(3000), "{report}");
    assert_eq!(envelope["reconciles"].as_bool(), Some(true), "{report}");
    assert!(envelope["paid"].as_u64().unwrap() > 2_500, "payees reject about 1%: {report}");
    let svg = std::fs::read_to_string(out.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}
