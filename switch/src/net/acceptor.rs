//! The switch's TLS front door, with certificate revocation.
//!
//! tonic's built-in TLS checks a client certificate against the CA but has
//! no place for a certificate revocation list, so the switch runs the mTLS
//! handshake itself (rustls with `WebPkiClientVerifier::with_crls`) and
//! hands tonic finished connections:
//!
//! - a handshake with a revoked, expired or foreign certificate fails and
//!   the connection is dropped (counted in `ponte_tls_handshakes_refused_total`);
//! - the CRL file is watched (checked every [`CRL_CHECK`]): a new CRL
//!   applies to the next handshake, and every open connection whose
//!   certificate it revokes is closed at once (its streams end), so a
//!   revoked participant cannot keep using a connection it opened before;
//! - a CRL that cannot be read or verified at start stops the switch with
//!   the reason; a bad replacement later is logged and the last good one
//!   stays in force (revocations are never silently dropped).
//!
//! Handshakes run concurrently, at most [`HANDSHAKES_MAX`] at once, each
//! bounded by [`HANDSHAKE_TIMEOUT`], so slow or silent clients cannot hold
//! up others.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, WatchStream};
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

/// Certificate files for a production deployment. When absent the switch
/// uses (and on first start creates) a development PKI in `DATA_DIR/certs`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The CA's certificate revocation list (PEM), watched for changes
    /// (absent: nothing is revoked). With the development PKI it is
    /// `DATA_DIR/certs/crl.pem`, written by `ponte cert revoke`.
    #[serde(default)]
    pub crl: Option<PathBuf>,
}

/// Why the TLS front door cannot be set up: the message names the file or
/// the part (CA, CRL, server certificate) to check.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// How often the CRL file is checked for a new version.
pub const CRL_CHECK: Duration = Duration::from_secs(2);
/// Most TLS handshakes in progress at once; further connections wait to start theirs.
pub const HANDSHAKES_MAX: usize = 512;
/// Longest a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished connections waiting for tonic to take them.
const ACCEPTED_QUEUE_MAX: usize = 64;

/// Serial numbers (DER integer bytes) of the revoked client certificates.
type Revoked = Arc<HashSet<Vec<u8>>>;

/// The TLS set-up in force, replaced when the CRL changes.
pub struct Tls {
    files: TlsFiles,
    crl: Option<PathBuf>,
    config: RwLock<Arc<rustls::ServerConfig>>,
    revoked: watch::Sender<Revoked>,
    /// Modification time and length of the CRL file last loaded.
    crl_seen: std::sync::Mutex<Option<(SystemTime, u64)>>,
}

impl Tls {
    /// Loads the certificates and, when `crl` names a file that exists, the
    /// CRL. A CRL path whose file does not exist yet means "none revoked"
    /// until one appears there.
    pub fn load(files: TlsFiles, crl: Option<PathBuf>) -> Result<Arc<Tls>, TlsError> {
        let seen = crl.as_deref().and_then(stamp);
        let (config, revoked) = build(&files, crl.as_deref().filter(|_| seen.is_some()))?;
        Ok(Arc::new(Tls {
            files,
            crl,
            config: RwLock::new(config),
            revoked: watch::channel(revoked).0,
            crl_seen: std::sync::Mutex::new(seen),
        }))
    }

    /// How many client certificates the CRL in force revokes.
    pub fn revoked_count(&self) -> usize {
        self.revoked.borrow().len()
    }

    /// Reloads the CRL if its file changed since the last look. `Ok(true)`:
    /// a new CRL is in force.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let Some(path) = &self.crl else { return Ok(false) };
        let now = stamp(path);
        let mut seen = self.crl_seen.lock().expect("not poisoned");
        if now.is_none() || now == *seen {
            return Ok(false); // unchanged, or removed: the last CRL stays in force
        }
        let (config, revoked) = build(&self.files, Some(path))?;
        *self.config.write().expect("not poisoned") = config;
        self.revoked.send_replace(revoked);
        *seen = now;
        Ok(true)
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.read().expect("not poisoned").clone())
    }

    /// The same set-up for the HTTPS gateway, which also speaks HTTP/1.1.
    fn http_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let mut config = (**self.config.read().expect("not poisoned")).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn build(files: &TlsFiles, crl: Option<&Path>) -> Result<(Arc<rustls::ServerConfig>, Revoked), TlsError> {
    let tls = |path: &Path, what: &str, e: &dyn std::fmt::Display| {
        TlsError(format!("{}: cannot read the {what}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca_cert).map_err(|e| tls(&files.ca_cert, "CA certificate", &e))? {
        let cert = cert.map_err(|e| tls(&files.ca_cert, "CA certificate", &e))?;
        roots.add(cert).map_err(|e| tls(&files.ca_cert, "CA certificate", &e))?;
    }
    let mut crls = Vec::new();
    let mut revoked = HashSet::new();
    if let Some(path) = crl {
        for der in CertificateRevocationListDer::pem_file_iter(path).map_err(|e| tls(path, "CRL", &e))? {
            let der = der.map_err(|e| tls(path, "CRL", &e))?;
            let (_, parsed) =
                x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| tls(path, "CRL", &e.to_string()))?;
            revoked.extend(parsed.iter_revoked_certificates().map(|r| r.raw_serial().to_vec()));
            crls.push(der);
        }
        if crls.is_empty() {
            return Err(tls(path, "CRL", &"no PEM \"X509 CRL\" block in the file"));
        }
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .build()
        .map_err(|e| TlsError(format!("client certificate verifier (CA or CRL): {e}")))?;
    let chain: Vec<_> = CertificateDer::pem_file_iter(&files.server_cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| tls(&files.server_cert, "server certificate", &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.server_key).map_err(|e| tls(&files.server_key, "server key", &e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(format!("server certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(config), Arc::new(revoked)))
}

/// Watches the CRL file until `stop` is dropped.
pub fn spawn_crl_watch(tls: Arc<Tls>, mut stop: watch::Receiver<()>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CRL_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let check = tls.clone();
            match tokio::task::spawn_blocking(move || check.reload_if_changed()).await {
                Ok(Ok(true)) => {
                    tracing::info!(revoked = tls.revoked_count(), "new certificate revocation list in force")
                }
                Ok(Ok(false)) => {}
                Ok(Err(error)) => tracing::error!(%error, "the new CRL was refused; the previous one stays in force"),
                Err(error) => tracing::error!(%error, "CRL check failed"),
            }
        }
    })
}

/// Accepts connections on `listener`, runs their handshakes and yields the
/// finished ones, until the returned stream is dropped.
pub fn incoming(listener: TcpListener, tls: Arc<Tls>) -> ReceiverStream<io::Result<Connection>> {
    accept(listener, tls, false)
}

/// As [`incoming`], offering HTTP/1.1 besides HTTP/2 (the ISO 20022 gateway).
pub fn incoming_http(listener: TcpListener, tls: Arc<Tls>) -> ReceiverStream<io::Result<Connection>> {
    accept(listener, tls, true)
}

fn accept(listener: TcpListener, tls: Arc<Tls>, http1: bool) -> ReceiverStream<io::Result<Connection>> {
    let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE_MAX);
    tokio::spawn(async move {
        let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
        loop {
            let permit = tokio::select! {
                permit = handshakes.clone().acquire_owned() => permit.expect("never closed"),
                _ = tx.closed() => return,
            };
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait, don't spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            // Nagle off: payments are small messages, and Nagle with delayed
            // ACKs adds 40 ms to a lone one.
            let _ = tcp.set_nodelay(true);
            let acceptor = if http1 { tls.http_acceptor() } else { tls.acceptor() };
            let (tx, revoked) = (tx.clone(), tls.revoked.subscribe());
            tokio::spawn(async move {
                let permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp).into_fallible()).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(Connection::new(stream, revoked))).await;
                    }
                    Ok(Err((error, tcp))) => {
                        metrics::counter!("ponte_tls_handshakes_refused_total").increment(1);
                        tracing::debug!(%error, "TLS handshake refused");
                        drop(permit);
                        close_after_alert(tcp).await;
                    }
                    Err(_) => {
                        metrics::counter!("ponte_tls_handshakes_refused_total").increment(1);
                        tracing::debug!("TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Longest a refused connection is kept open after its alert, and the
/// most bytes read from it meanwhile.
const REFUSED_LINGER: Duration = Duration::from_secs(1);
const REFUSED_DRAIN_MAX: usize = 64 * 1024;

/// Closes a connection whose handshake was refused so that the client
/// reads the alert (certificate expired, revoked...) before the end: the
/// write side is shut (a FIN after the alert), and what the client still
/// sends is read and dropped for a moment. Dropping the socket with unread
/// bytes would send a reset instead, which can make the client lose the
/// alert and report a bare transport error that looks retryable.
async fn close_after_alert(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let drain = async {
        let (mut buffer, mut read) = ([0_u8; 4096], 0);
        while read < REFUSED_DRAIN_MAX {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSED_LINGER, drain).await;
}

/// A finished mTLS connection that fails its reads and writes as soon as
/// its client certificate is revoked, which makes tonic close it.
pub struct Connection {
    inner: TlsStream<TcpStream>,
    /// The client certificate's serial number (DER integer bytes).
    serial: Vec<u8>,
    updates: WatchStream<Revoked>,
    revoked: bool,
}

impl Connection {
    fn new(inner: TlsStream<TcpStream>, revoked: watch::Receiver<Revoked>) -> Connection {
        let serial = inner
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|leaf| x509_parser::parse_x509_certificate(leaf.as_ref()).ok())
            .map(|(_, cert)| cert.raw_serial().to_vec())
            .unwrap_or_default();
        Connection { inner, serial, updates: WatchStream::new(revoked), revoked: false }
    }

    /// Who the client certificate names (for services outside tonic).
    pub fn caller(&self) -> Result<crate::net::tls::Caller, String> {
        let certs = self.inner.get_ref().1.peer_certificates();
        let leaf = certs.and_then(|certs| certs.first()).ok_or("a client certificate is required")?;
        crate::net::tls::identity_of(leaf.as_ref()).map_err(|status| status.message().to_owned())
    }

    /// Whether the certificate is revoked now; registers for the next CRL.
    fn is_revoked(&mut self, cx: &mut Context<'_>) -> bool {
        while !self.revoked {
            match Pin::new(&mut self.updates).poll_next(cx) {
                Poll::Ready(Some(revoked)) => self.revoked = revoked.contains(&self.serial),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        self.revoked
    }

    fn refused() -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, "the client certificate has been revoked")
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.is_revoked(cx) {
            return Poll::Ready(Err(Connection::refused()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.is_revoked(cx) {
            return Poll::Ready(Err(Connection::refused()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_revoked(cx) {
            return Poll::Ready(Err(Connection::refused()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for Connection {
    // The same connect info tonic's own TLS gives, so `Request::peer_certs`
    // (and with it `tls::caller_of`) works unchanged.
    type ConnectInfo = TlsConnectInfo<TcpConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
