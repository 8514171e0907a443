//! A small client of the switch's ISO 20022 gateway (HTTPS over HTTP/2 with
//! the participant's mTLS identity), for Rust programs that exchange ISO
//! 20022 documents: Ponte's load test and tests use it, and it shows in a
//! few lines what any HTTP client does (docs/ISO20022.md).
//!
//! [`IsoClient::post`] sends one document to `/iso20022/v1/messages` and
//! returns the HTTP status and body; [`IsoClient::inbox`] opens the
//! payee's channel, [`IsoInbox::next_document`] reads it one document
//! (one line) at a time.

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// Why a gateway call failed (the switch's refusals are HTTP statuses in
/// the `Ok` answers, not errors).
#[derive(Debug, thiserror::Error)]
#[error("ISO 20022 gateway: {0}")]
pub struct IsoError(pub String);

/// One HTTP/2 connection to the gateway; cheap to clone, and clones share it
/// (calls run concurrently on its streams).
#[derive(Clone)]
pub struct IsoClient {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl IsoClient {
    /// Connects with the participant's PEM certificate and key, trusting the
    /// switch's CA; `server_name` is the name on the switch's certificate.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<IsoClient, IsoError> {
        let error = |what: &str, e: &dyn std::fmt::Display| IsoError(format!("{what}: {e}"));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.map_err(|e| error("CA certificate", &e))?).map_err(|e| error("CA certificate", &e))?;
        }
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error("certificate", &e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| error("key", &e))?;
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| error("certificate and key", &e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| error("server name", &e))?;
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| error("connect", &e))?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| error("TLS handshake", &e))?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| error("HTTP/2 handshake", &e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(IsoClient { sender, authority: addr.to_string() })
    }

    /// Connects as `name` with the development certificates in `dir`
    /// (`ca.pem`, `NAME.pem`, `NAME.key`, as `ponte serve` writes them).
    pub async fn from_dev_dir(addr: SocketAddr, dir: &Path, name: &str) -> Result<IsoClient, IsoError> {
        let read = |file: String| std::fs::read(dir.join(&file)).map_err(|e| IsoError(format!("{file}: {e}")));
        let (ca, cert, key) = (read("ca.pem".into())?, read(format!("{name}.pem"))?, read(format!("{name}.key"))?);
        IsoClient::connect(addr, "localhost", &ca, &cert, &key).await
    }

    fn request(&self, method: &str, path: &str, body: Bytes) -> Result<hyper::Request<Full<Bytes>>, IsoError> {
        hyper::Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
            .header("content-type", "application/xml")
            .body(Full::new(body))
            .map_err(|e| IsoError(e.to_string()))
    }

    /// Sends one document; the HTTP status and the body (a pacs.002, or
    /// the reason it was refused).
    pub async fn post(&self, document: impl Into<Bytes>) -> Result<(u16, String), IsoError> {
        self.call(self.request("POST", "/iso20022/v1/messages", document.into())?).await
    }

    /// This participant's camt.053 statement of `cycle`: the HTTP status
    /// and the body.
    pub async fn statement(&self, cycle: u64) -> Result<(u16, String), IsoError> {
        self.call(self.request("GET", &format!("/iso20022/v1/statements/{cycle}"), Bytes::new())?).await
    }

    /// Sends `request`; its HTTP status and whole body.
    async fn call(&self, request: hyper::Request<Full<Bytes>>) -> Result<(u16, String), IsoError> {
        let response = self.sender.clone().send_request(request).await.map_err(|e| IsoError(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| IsoError(e.to_string()))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Opens this participant's inbox channel.
    pub async fn inbox(&self) -> Result<IsoInbox, IsoError> {
        let request = self.request("GET", "/iso20022/v1/inbox", Bytes::new())?;
        let response = self.sender.clone().send_request(request).await.map_err(|e| IsoError(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(IsoError(format!("inbox refused: {status}: {}", String::from_utf8_lossy(&body).trim())));
        }
        Ok(IsoInbox { body: response.into_body(), buffer: Vec::new() })
    }
}

/// The payee's channel: documents, one per line.
pub struct IsoInbox {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl IsoInbox {
    /// The next document (heartbeat lines skipped); `None` when the switch
    /// ends the channel.
    pub async fn next_document(&mut self) -> Result<Option<String>, IsoError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                if line.trim().is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buffer.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
                Some(Err(e)) => return Err(IsoError(e.to_string())),
                None => return Ok(None),
            }
        }
    }
}
