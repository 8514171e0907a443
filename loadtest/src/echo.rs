//! The ceiling: a trivial echo of the switch's own messages through the same
//! tonic + rustls stack, so switch throughput can be stated as a fraction of
//! what gRPC itself does on this machine.
//!
//! The echo service implements `ponte.v1.Payments`: `Submit` answers each
//! request with a settled result at once, `SubmitStream` turns each
//! `SubmitBatch` into a `ResultBatch`. No engine, no disk, no payee.

use ponte_proto::v1 as pb;
use ponte_proto::v1::payments_server::{Payments, PaymentsServer};
use ponte_switch::net::tls::DevPki;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Default, Clone)]
pub struct EchoService;

fn echo(request: &pb::PaymentRequest) -> pb::PaymentResult {
    pb::PaymentResult {
        end_to_end_id: request.end_to_end_id.clone(),
        status: pb::PaymentStatus::Settled as i32,
        settled_at_ms: 1,
        ..Default::default()
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Payments for EchoService {
    async fn submit(&self, request: Request<pb::PaymentRequest>) -> Result<Response<pb::PaymentResult>, Status> {
        Ok(Response::new(echo(request.get_ref())))
    }

    type SubmitStreamStream = BoxStream<pb::ResultBatch>;

    async fn submit_stream(
        &self,
        request: Request<Streaming<pb::SubmitBatch>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        let incoming = request.into_inner();
        let out =
            incoming.map(|batch| batch.map(|b| pb::ResultBatch { results: b.payments.iter().map(echo).collect() }));
        Ok(Response::new(Box::pin(out)))
    }

    type InboxStream = BoxStream<pb::InboxDown>;

    async fn inbox(&self, _: Request<Streaming<pb::InboxUp>>) -> Result<Response<Self::InboxStream>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn get_status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::TransferStatus>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn r#return(&self, _: Request<pb::ReturnRequest>) -> Result<Response<pb::PaymentResult>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn cycle_transfers(
        &self,
        _: Request<pb::CycleTransfersRequest>,
    ) -> Result<Response<pb::CycleTransfersResponse>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn recall(&self, _: Request<pb::RecallRequest>) -> Result<Response<pb::RecallStatus>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn refuse_recall(&self, _: Request<pb::RefuseRecallRequest>) -> Result<Response<pb::RecallStatus>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn get_recall(&self, _: Request<pb::GetRecallRequest>) -> Result<Response<pb::RecallStatus>, Status> {
        Err(Status::unimplemented("echo server"))
    }
}

/// A running echo server.
pub struct EchoServer {
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    /// Serves the echo over mTLS with the server certificate of `pki`.
    pub async fn start(pki: &DevPki) -> anyhow::Result<EchoServer> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |p: &Path| std::fs::read(p);
        let server = pki.identity("server");
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(read(&server.cert)?, read(&server.key)?))
            .client_ca_root(Certificate::from_pem(read(&pki.ca_cert())?));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let router = Server::builder()
            .tls_config(tls)?
            .tcp_nodelay(true)
            .add_service(PaymentsServer::new(EchoService).max_decoding_message_size(16 << 20));
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(EchoServer { addr, shutdown, task })
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}
