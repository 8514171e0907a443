//! The raw ceiling of this machine: the switch's own payment messages echoed
//! through the same tonic + rustls (mTLS) stack on loopback, with no engine,
//! disk or payee behind it. Pipelined submit stream (batches of 256) and
//! unary calls.
//!
//! `cargo bench -p ponte-benches --bench echo`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ponte_domain::ParticipantId;
use ponte_loadtest::echo::EchoServer;
use ponte_proto::v1 as pb;
use ponte_proto::v1::payments_client::PaymentsClient;
use ponte_sdk::Identity;
use ponte_switch::net::tls::DevPki;
use std::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;

const BATCH: usize = 256;
/// Stream messages in flight at once.
const PIPELINE: usize = 16;

fn request(i: usize) -> pb::PaymentRequest {
    let account = |code: &str| pb::Account {
        participant: code.into(),
        branch: "0001".into(),
        number: "12345678".into(),
        r#type: pb::AccountType::Checking as i32,
    };
    pb::PaymentRequest {
        end_to_end_id: format!("E10000001202611262155{i:011}"),
        payer: Some(account("10000001")),
        payee: Some(pb::Payee { target: Some(pb::payee::Target::Account(account("10000002"))) }),
        amount: "123.45".into(),
        currency: "BRL".into(),
        remittance: String::new(),
        lookup_by: None,
    }
}

fn echo(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::new(dir.path());
    let me = ParticipantId::new(10000001).unwrap();
    pki.ensure(&["localhost".into()], &[me]).unwrap();
    let server = server_rt.block_on(EchoServer::start(&pki)).unwrap();
    let endpoint = format!("https://{}", server.addr);
    let channel =
        client_rt.block_on(Identity::from_dev_dir(dir.path(), "10000001").unwrap().channel(&endpoint)).unwrap();

    let mut group = c.benchmark_group("echo");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("stream_payments_batch_256", |b| {
        b.iter_custom(|iters| {
            client_rt.block_on(async {
                let (tx, rx) = tokio::sync::mpsc::channel(PIPELINE);
                let mut client = PaymentsClient::new(channel.clone()).max_decoding_message_size(64 << 20);
                let mut results = client.submit_stream(ReceiverStream::new(rx)).await.unwrap().into_inner();
                let batch = pb::SubmitBatch { payments: (0..BATCH).map(request).collect() };
                let started = Instant::now();
                let sender = tokio::spawn(async move {
                    for _ in 0..iters {
                        tx.send(batch.clone()).await.unwrap();
                    }
                });
                let mut received = 0;
                while received < iters as usize * BATCH {
                    received += results.message().await.unwrap().unwrap().results.len();
                }
                sender.await.unwrap();
                started.elapsed()
            })
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("unary_64_concurrent", |b| {
        b.iter(|| {
            client_rt.block_on(async {
                let calls = (0..64).map(|i| {
                    let mut client = PaymentsClient::new(channel.clone());
                    async move { client.submit(request(i)).await.unwrap() }
                });
                futures::future::join_all(calls).await
            })
        })
    });
    group.finish();
    server_rt.block_on(server.stop());
}

criterion_group!(benches, echo);
criterion_main!(benches);
