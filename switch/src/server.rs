//! Wiring: configuration, start-up and shutdown of a switch.
//!
//! [`start`] prepares the data directory (journal, development
//! certificates on first start), replays the journal, and serves the gRPC
//! services over mTLS. The returned [`RunningSwitch`] says where everything
//! is and stops it cleanly.

use crate::grpc::{DirectoryService, DisbursementService, OperatorService, PaymentsService, ServiceConfig};
use crate::net::acceptor::{Tls, TlsError, TlsFiles};
use crate::net::tls::{DevPki, PkiError};
use crate::runtime::{EngineHandle, Runtime, RuntimeConfig, StartError};
use crate::store::cql::{CqlConfig, CqlStandby, CqlStore};
use crate::store::redb::Journal;
use crate::store::{Store, StoreError};
use ponte_domain::{Amount, ParticipantId};
use ponte_ledger::{EngineConfig, op};
use ponte_proto::v1::directory_server::DirectoryServer;
use ponte_proto::v1::disbursements_server::DisbursementsServer;
use ponte_proto::v1::operator_server::OperatorServer;
use ponte_proto::v1::payments_server::PaymentsServer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::transport::Server;

/// A participant the switch admits and certifies on its first start, so a
/// quickstart has someone to pay.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevParticipant {
    pub code: String,
    pub name: String,
    pub net_debit_cap: String,
}

/// The whole configuration: one TOML file, every field optional with a
/// documented default; environment variables and flags override it (see
/// `ponte serve --help`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve gRPC on (default 127.0.0.1:7700).
    pub listen: SocketAddr,
    /// Where the journal and development certificates live (default ./ponte-data).
    pub data_dir: PathBuf,
    /// Where the journal lives: absent for the embedded store
    /// (`DATA_DIR/journal.redb`), or `cql://HOST:PORT[,..]/KEYSPACE[?options]`
    /// for Apache Cassandra / ScyllaDB (see docs/STORAGE.md).
    pub store: Option<String>,
    /// Names the development server certificate is valid for.
    pub server_names: Vec<String>,
    pub tls: Option<TlsFiles>,
    /// Participants admitted and certified when the journal is new.
    pub dev_participants: Vec<DevParticipant>,
    /// Where to serve Prometheus metrics (`/metrics`); absent: no metrics
    /// (default 127.0.0.1:9700).
    pub metrics_listen: Option<SocketAddr>,
    /// Where to serve the ISO 20022 gateway (HTTPS with the same mTLS;
    /// docs/ISO20022.md); absent: no gateway (the default).
    pub iso20022_listen: Option<SocketAddr>,
    /// Most concurrent HTTP/2 streams per connection (default 1,024).
    pub http2_streams_per_connection_max: u32,
    pub engine: EngineConfig,
    pub runtime: RuntimeConfig,
    pub service: ServiceConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: PathBuf::from("ponte-data"),
            store: None,
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            tls: None,
            dev_participants: vec![
                DevParticipant {
                    code: "10000001".into(),
                    name: "Banco Atlântico".into(),
                    net_debit_cap: "1000000.00".into(),
                },
                DevParticipant {
                    code: "10000002".into(),
                    name: "Caixa Serra".into(),
                    net_debit_cap: "1000000.00".into(),
                },
                DevParticipant {
                    code: "10000003".into(),
                    name: "Carteira Rio".into(),
                    net_debit_cap: "250000.00".into(),
                },
            ],
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9700))),
            iso20022_listen: None,
            http2_streams_per_connection_max: 1_024,
            engine: EngineConfig::default(),
            runtime: RuntimeConfig::default(),
            service: ServiceConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error (a typo must not be silently ignored).
    pub fn from_file(path: &Path) -> Result<Config, ServeError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ServeError::Io { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    fn dev_participants(&self) -> Result<Vec<(ParticipantId, String, Amount)>, ServeError> {
        self.dev_participants
            .iter()
            .map(|p| {
                let code = p
                    .code
                    .parse()
                    .map_err(|e| ServeError::Config(format!("dev participant code {:?}: {e}", p.code)))?;
                let cap = Amount::parse_non_negative(&p.net_debit_cap)
                    .map_err(|e| ServeError::Config(format!("dev participant {} net_debit_cap: {e}", p.code)))?;
                Ok((code, p.name.clone(), cap))
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("the engine stopped during start-up")]
    Stopped,
}

/// A switch that is serving.
pub struct RunningSwitch {
    pub local_addr: SocketAddr,
    /// Where the ISO 20022 gateway listens, when it is on.
    pub iso20022_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// Where the development certificates are, when the switch uses them.
    pub dev_pki: Option<DevPki>,
    /// Whether this start created the development certificates.
    pub created_certificates: bool,
    pub replayed_records: u64,
    /// Records applied while following as a standby (Cassandra), before the takeover.
    pub followed_records: u64,
    pub engine: EngineHandle,
    shutdown: oneshot::Sender<()>,
    publisher: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    gateway: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    /// The `grpc.health.v1` statuses: SERVING while this node serves,
    /// NOT_SERVING from the moment it starts to stop.
    health: tonic_health::server::HealthReporter,
    runtime: Runtime,
}

impl RunningSwitch {
    /// The URL clients connect to.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.local_addr)
    }

    /// Becomes true when the journal store fails or this node is fenced:
    /// the switch can no longer acknowledge anything and should stop.
    pub fn failed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.runtime.journal_ended()
    }

    /// Stops serving, drains the engine and flushes the journal.
    pub async fn stop(self) {
        crate::metrics::set_state(crate::metrics::State::Stopping);
        // Load balancers checking health stop sending new calls here first.
        for service in HEALTH_SERVICES.iter().chain([&""]) {
            self.health.set_service_status(*service, tonic_health::ServingStatus::NotServing).await;
        }
        let _ = self.shutdown.send(());
        if let Some((stop, gateway)) = self.gateway {
            let _ = stop.send(true);
            let _ = gateway.await;
        }
        self.publisher.abort();
        drop(self.engine);
        // Stopping the engine ends the inbox streams (their senders live in
        // the journal thread), which lets the graceful shutdown finish.
        let runtime = self.runtime;
        let _ = tokio::task::spawn_blocking(move || runtime.join()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// The TLS front door's files: the configured ones, or the development
/// PKI's (created on first start), and whether this start created them.
fn load_tls(
    config: &Config,
    dev_participants: &[(ParticipantId, String, Amount)],
) -> Result<(std::sync::Arc<Tls>, Option<DevPki>, bool), ServeError> {
    let (tls_files, dev_pki, created_certificates) = match &config.tls {
        Some(files) => (files.clone(), None, false),
        None => {
            let pki = DevPki::new(config.certs_dir());
            let codes: Vec<_> = dev_participants.iter().map(|(code, ..)| *code).collect();
            let created = pki.ensure(&config.server_names, &codes)?;
            let server = pki.identity("server");
            let files = TlsFiles {
                ca_cert: pki.ca_cert(),
                server_cert: server.cert,
                server_key: server.key,
                crl: Some(pki.crl()),
            };
            (files, Some(pki), created)
        }
    };
    let crl = tls_files.crl.clone();
    Ok((Tls::load(tls_files, crl)?, dev_pki, created_certificates))
}

/// Opens the store, replays it into the engine and starts the runtime; on
/// a fresh store, registers the development participants.
async fn start_runtime(
    config: &Config,
    dev_participants: Vec<(ParticipantId, String, Amount)>,
) -> Result<Runtime, ServeError> {
    // Opening a store and replaying it block (and a Cassandra store may wait
    // as a standby for the writer lease): off the async workers.
    let (store, engine_config, runtime_config) = (config.store.clone(), config.engine.clone(), config.runtime.clone());
    let journal_path = config.data_dir.join("journal.redb");
    let runtime = tokio::task::spawn_blocking(move || match store.as_deref() {
        // On Cassandra a node waits as a hot standby while another writes.
        Some(address) if address.starts_with("cql://") => {
            let standby = CqlStandby::connect(CqlConfig::parse(address)?)?;
            Runtime::start_standby(standby, engine_config, runtime_config)
        }
        None | Some("") | Some("embedded") => Runtime::start_embedded(&journal_path, engine_config, runtime_config),
        _ => Runtime::start(open_store(store.as_deref(), &journal_path)?, engine_config, runtime_config),
    })
    .await
    .map_err(|_| ServeError::Stopped)??;
    if runtime.started_empty {
        for (id, name, net_debit_cap) in dev_participants {
            let registered = runtime
                .handle
                .ask(op::RegisterParticipant { id, name, net_debit_cap })
                .await
                .map_err(|_| ServeError::Stopped)?;
            if let Err(error) = registered {
                return Err(ServeError::Config(format!("dev participant {id}: {error}")));
            }
        }
    }
    Ok(runtime)
}

/// The services `grpc.health.v1` answers for by name (and `""`, the server).
/// The names are the generated servers' own.
pub const HEALTH_SERVICES: [&str; 4] = {
    use tonic::server::NamedService;
    [
        <PaymentsServer<PaymentsService> as NamedService>::NAME,
        <DirectoryServer<DirectoryService> as NamedService>::NAME,
        <DisbursementsServer<DisbursementService> as NamedService>::NAME,
        <OperatorServer<OperatorService> as NamedService>::NAME,
    ]
};

/// The four gRPC services with their message size bounds, and the standard
/// health service (`grpc.health.v1.Health`: a load balancer or an
/// orchestrator checks it with the same mTLS as any call).
fn services(
    config: &Config,
    engine: &EngineHandle,
    health: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) -> tonic::transport::server::Router {
    let bytes_max = config.service.message_bytes_max;
    let payments = PaymentsServer::new(PaymentsService::new(engine.clone(), config.service.clone()))
        .max_decoding_message_size(bytes_max)
        .max_encoding_message_size(bytes_max * 4);
    let operator = OperatorServer::new(OperatorService::new(engine.clone())).max_decoding_message_size(bytes_max);
    let directory = DirectoryServer::new(DirectoryService::new(engine.clone()))
        .max_decoding_message_size(bytes_max)
        .max_encoding_message_size(usize::MAX);
    // An upload message carries up to 10,000 items (about 2 MB).
    let disbursements = DisbursementsServer::new(DisbursementService::new(engine.clone()))
        .max_decoding_message_size(bytes_max.max(8 * 1024 * 1024))
        .max_encoding_message_size(usize::MAX);
    Server::builder()
        .max_concurrent_streams(Some(config.http2_streams_per_connection_max))
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(payments)
        .add_service(directory)
        .add_service(disbursements)
        .add_service(operator)
        .add_service(health)
}

/// Starts a switch. Call from inside a multi-threaded tokio runtime.
pub async fn start(config: Config) -> Result<RunningSwitch, ServeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServeError::Io { path, source }
    };
    std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
    let dev_participants = config.dev_participants()?;

    let (tls, dev_pki, created_certificates) = load_tls(&config, &dev_participants)?;
    if let Some(addr) = config.metrics_listen {
        crate::metrics::install(addr).await.map_err(ServeError::Metrics)?;
    }
    let runtime = start_runtime(&config, dev_participants).await?;
    let engine = runtime.handle.clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let gateway = match config.iso20022_listen {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Listen { addr, source })?;
            let addr = listener.local_addr().map_err(|source| ServeError::Listen { addr, source })?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let gateway = crate::iso20022::Gateway::new(engine.clone(), config.service.clone());
            tracing::info!(%addr, "ISO 20022 gateway serving");
            Some((addr, stop, gateway.spawn(listener, tls.clone(), stopped)))
        }
        None => None,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in HEALTH_SERVICES {
        health.set_service_status(service, tonic_health::ServingStatus::Serving).await;
    }
    let router = services(&config, &engine, health_service);
    let publisher = crate::metrics::spawn_publisher(engine.clone());
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    // The mTLS handshakes (with the CRL) run in the acceptor; tonic gets
    // finished connections. The CRL watch ends with the server.
    let (crl_watch_stop, crl_watch_stopped) = tokio::sync::watch::channel(());
    let crl_watch = crate::net::acceptor::spawn_crl_watch(tls.clone(), crl_watch_stopped);
    let incoming = crate::net::acceptor::incoming(listener, tls);
    let server = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = shutdown_rx.await;
            })
            .await;
        drop(crl_watch_stop);
        let _ = crl_watch.await;
        served
    });
    crate::metrics::set_state(crate::metrics::State::Serving);
    tracing::info!(%local_addr, data_dir = %config.data_dir.display(), store = config.store.as_deref().unwrap_or("embedded"), "switch serving");
    Ok(RunningSwitch {
        local_addr,
        iso20022_addr: gateway.as_ref().map(|(addr, ..)| *addr),
        gateway: gateway.map(|(_, stop, task)| (stop, task)),
        data_dir: config.data_dir.clone(),
        dev_pki,
        created_certificates,
        replayed_records: runtime.replayed_records,
        followed_records: runtime.followed_records,
        engine,
        shutdown,
        publisher,
        server,
        health,
        runtime,
    })
}

/// Opens the configured store. Blocks.
pub fn open_store(store: Option<&str>, journal_path: &Path) -> Result<Box<dyn Store>, StoreError> {
    match store {
        None | Some("") | Some("embedded") => Ok(Box::new(Journal::open(journal_path)?)),
        Some(address) if address.starts_with("cql://") => Ok(Box::new(CqlStore::open(CqlConfig::parse(address)?)?)),
        Some(address) => Err(StoreError::Address {
            address: address.to_string(),
            reason: "use `embedded` or cql://HOST:PORT/KEYSPACE".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_defaults_read_back_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ponte.toml");
        std::fs::write(&path, toml::to_string_pretty(&Config::default()).unwrap()).unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.engine.amount_max, Config::default().engine.amount_max);
        std::fs::write(&path, "[engine]\npayee_timeout_msec = 10\n").unwrap();
        let error = Config::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("payee_timeout_msec"), "{error}");
        std::fs::write(&path, "[engine]\npayee_timeout_ms = 1500\n").unwrap();
        assert_eq!(Config::from_file(&path).unwrap().engine.payee_timeout_ms, 1500);
    }

    #[test]
    fn the_country_profile_is_chosen_by_configuration_and_an_unknown_one_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ponte.toml");
        assert_eq!(Config::default().engine.country.code(), "BR");
        std::fs::write(&path, "[engine]\ncountry = \"br\"\n").unwrap();
        assert_eq!(Config::from_file(&path).unwrap().engine.country.code(), "BR");
        std::fs::write(&path, "[engine]\ncountry = \"ZZ\"\n").unwrap();
        let error = Config::from_file(&path).unwrap_err();
        assert!(matches!(error, ServeError::Config(_)), "{error}");
        let error = error.to_string();
        assert!(error.contains("unknown country \"ZZ\"") && error.contains("profiles for BR"), "{error}");
    }
}
