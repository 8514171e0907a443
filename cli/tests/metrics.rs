//! The Prometheus endpoint serves the switch's counters after real payments.
//! (Its own test binary: the metrics recorder is process-wide.)

mod common;

use common::*;
use ponte_switch::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_payments() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = config(dir.path());
    config.metrics_listen = Some(([127, 0, 0, 1], metrics_port).into());
    let switch = server::start(config.clone()).await.unwrap();
    let harness = TestSwitch { dir, switch: Some(switch), config };
    let (a, b) = (harness.client(A).await, harness.client(B).await);
    let inbox = Payee::accepting().serve(&b).await;
    assert!(a.submit(&payment(&a, B, "1.00")).await.unwrap().is_settled());
    assert!(!a.submit(&payment(&a, C, "1.00")).await.unwrap().is_settled(), "C has no inbox: AB08");
    let mut body = String::new();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", metrics_port)).await.unwrap();
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await.unwrap();
        body.clear();
        stream.read_to_string(&mut body).await.unwrap();
        if body.contains("ponte_payments_settled_total 1") {
            break;
        }
    }
    for expected in [
        "ponte_payments_settled_total 1",
        "ponte_payments_rejected_total 1",
        "ponte_rejects_total{reason=\"AB08\"} 1",
        "ponte_request_queue_depth",
        "ponte_payment_seconds_bucket",
        "ponte_journal_append_seconds_bucket",
        // B's one answer came in one message, after its inbox had the payment.
        "ponte_stream_messages_total{kind=\"answers\"} 1",
        "ponte_stream_items_total{kind=\"answers\"} 1",
        "ponte_stream_messages_total{kind=\"inbox\"}",
    ] {
        assert!(body.contains(expected), "metrics lack {expected:?}:\n{body}");
    }
    // The build, and the probes beside the metrics.
    let (commit, version) = (ponte_switch::metrics::COMMIT, ponte_switch::metrics::VERSION);
    let build =
        body.lines().find(|l| l.starts_with("ponte_build_info{")).unwrap_or_else(|| panic!("no build info:\n{body}"));
    assert!(
        build.contains(&format!("commit=\"{commit}\"")) && build.contains(&format!("version=\"{version}\"")),
        "{build}"
    );
    assert!(build.ends_with(" 1"), "{build}");
    assert_eq!(http_get(metrics_port, "/healthz").await, (200, "serving\n".into()));
    assert_eq!(http_get(metrics_port, "/readyz").await, (200, "serving\n".into()));
    let (status, body) = http_get(metrics_port, "/anything").await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("ponte_"), "only /metrics serves the metrics: {body}");
    inbox.stop().await;
    let stopping = tokio::spawn(async move { harness.stop().await });
    stopping.await.unwrap();
    let (status, body) = http_get(metrics_port, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "stopping\n"), "not ready once stopping");
}
