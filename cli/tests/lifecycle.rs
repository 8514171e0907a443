//! Stopping the real `ponte serve` binary the way service managers do
//! (systemd and Kubernetes send SIGTERM; a terminal sends SIGINT): it stops
//! gracefully, within its bound, with an inbox stream open; nothing
//! acknowledged is lost; and on Cassandra the writer lease is handed over
//! at once, so the next node serves without waiting for it to lapse.

mod common;

use common::*;
use ponte_domain::TransferState;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_the_switch_gracefully_and_lose_nothing() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        // On Cassandra (the second pass of `scripts/test-all`): a keyspace
        // whose writer lease lasts a minute, and a node name per start.
        let keyspace = test_store(&format!("lifecycle_{}", signal.to_lowercase()))
            .map(|s| s.replace("lease_ttl_s=2", "lease_ttl_s=60"));
        let on = |node: &str| keyspace.as_ref().map(|s| format!("{s}&node={node}"));
        let first = on("first");
        let mut switch = spawn_ponte(dir.path(), free_port(), first.as_deref(), &[]);
        let (a, b, _) = process_clients(dir.path(), &switch.endpoint).await;
        let inbox = Payee::accepting().serve(&b).await;
        let paid = payment(&a, B, "7.00");
        assert!(a.submit(&paid).await.unwrap().is_settled());

        // The signal, with the payee's inbox stream still open.
        let asked = Instant::now();
        let pid = switch.child.id().to_string();
        assert!(std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
        let status = loop {
            if let Some(status) = switch.child.try_wait().unwrap() {
                break status;
            }
            assert!(asked.elapsed() < Duration::from_secs(40), "SIG{signal}: it stops");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = asked.elapsed();
        assert!(status.success(), "SIG{signal}: a graceful stop exits 0, not {status:?}");
        assert!(took < Duration::from_secs(30), "SIG{signal}: stopped in {took:?}, within its 30 s bound");
        eprintln!("SIG{signal}: stopped in {took:?}");
        drop(inbox);
        drop(switch);

        // Started again (on Cassandra: another node, which finds the lease
        // released, not held for another minute): the payment is there.
        let again = Instant::now();
        let second = on("second");
        let switch = spawn_ponte(dir.path(), free_port(), second.as_deref(), &[]);
        assert!(again.elapsed() < Duration::from_secs(30), "serving again in {:?}", again.elapsed());
        let (a, ..) = process_clients(dir.path(), &switch.endpoint).await;
        assert_eq!(a.status(&paid.id).await.unwrap().state, TransferState::Settled);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_health_service_answers_for_the_server_and_each_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let switch = TestSwitch::start().await;
    // With the same mTLS as any call (a bank's or the operator's certificate).
    let channel = switch.identity("operator").channel(&switch.endpoint()).await.unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "ponte.v1.Payments", "ponte.v1.Directory", "ponte.v1.Disbursements", "ponte.v1.Operator"] {
        let answer = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "ponte.v1.Nothing".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    switch.stop().await;
}
