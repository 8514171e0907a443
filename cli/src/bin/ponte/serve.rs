//! `ponte serve`: run the switch.

use clap::Args;
use ponte_switch::server;
use ponte_switch::server::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How long a graceful stop may take before the process exits anyway.
const STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "PONTE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: journal and development certificates [default: ponte-data]
    #[arg(long, env = "PONTE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Journal store: `embedded` (DATA_DIR/journal.redb) or
    /// `cql://HOST:PORT[,HOST:PORT]/KEYSPACE[?replication_factor=N&node=NAME&lease_ttl_s=S]`
    /// for Apache Cassandra / ScyllaDB [default: embedded]
    #[arg(long, env = "PONTE_STORE")]
    store: Option<String>,
    /// Address to serve on [default: 127.0.0.1:7700]
    #[arg(long, env = "PONTE_LISTEN")]
    listen: Option<SocketAddr>,
    /// How long a payee has to answer, in milliseconds [default: 5000]
    #[arg(long, env = "PONTE_PAYEE_TIMEOUT_MS")]
    payee_timeout_ms: Option<i64>,
    /// Where to serve Prometheus metrics, or `off` [default: 127.0.0.1:9700]
    #[arg(long, env = "PONTE_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Where to serve the ISO 20022 gateway (HTTPS, same mTLS; see
    /// docs/ISO20022.md), or `off` [default: off]
    #[arg(long, env = "PONTE_ISO20022_LISTEN")]
    iso20022_listen: Option<String>,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(store) = args.store {
        config.store = Some(store);
    }
    if let Some(ms) = args.payee_timeout_ms {
        anyhow::ensure!(ms > 0, "--payee-timeout-ms must be positive");
        config.engine.payee_timeout_ms = ms;
    }
    match args.metrics_listen.as_deref() {
        None => {}
        Some("off") => config.metrics_listen = None,
        Some(addr) => {
            config.metrics_listen = Some(addr.parse().map_err(|e| anyhow::anyhow!("--metrics-listen {addr:?}: {e}"))?)
        }
    }
    match args.iso20022_listen.as_deref() {
        None => {}
        Some("off") => config.iso20022_listen = None,
        Some(addr) => {
            config.iso20022_listen = Some(addr.parse().map_err(|e| anyhow::anyhow!("--iso20022-listen {addr:?}: {e}"))?)
        }
    }
    let switch = server::start(config.clone()).await?;
    println!("Ponte switch serving on {}", switch.endpoint());
    println!("  data directory: {}", switch.data_dir.display());
    println!("  journal store: {}", config.store.as_deref().unwrap_or("embedded (DATA_DIR/journal.redb)"));
    println!("  journal records replayed: {}", switch.replayed_records);
    if switch.followed_records > 0 {
        println!("  journal records followed as a standby before taking over: {}", switch.followed_records);
    }
    if let Some(pki) = &switch.dev_pki {
        let verb = if switch.created_certificates { "created" } else { "using" };
        println!("  development certificates ({verb}): {}", pki.dir.display());
        println!("    CA: ca.pem   server: server.pem/.key   operator: operator.pem/.key");
        for p in &config.dev_participants {
            println!("    participant {} ({}): {}.pem/.key", p.code, p.name, p.code);
        }
        println!("  try: cargo run --release -- participant list --certs {}", pki.dir.display());
    }
    if let Some(addr) = config.metrics_listen {
        println!("  metrics: http://{addr}/metrics");
    }
    if let Some(addr) = switch.iso20022_addr {
        println!("  ISO 20022 gateway: https://{addr}/iso20022/v1/messages (POST), /iso20022/v1/inbox (GET)");
    }
    println!("Stop with Ctrl-C (SIGINT) or SIGTERM: both stop gracefully.");
    let mut failed = switch.failed();
    // SIGTERM is how systemd, Kubernetes and `kill` stop a service; SIGINT
    // is Ctrl-C. Either one stops the switch as below, not mid-write.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signal = tokio::select! {
        signal = tokio::signal::ctrl_c() => { signal?; "SIGINT" }
        _ = terminate.recv() => "SIGTERM",
        _ = failed.wait_for(|failed| *failed) => {
            // Nothing more can be made durable (disk error, or another node
            // fenced this one): stop serving rather than answer from a
            // ledger that can no longer be journaled.
            switch.stop().await;
            anyhow::bail!("the journal store failed or this node was fenced by another writer (see the log above); exiting");
        }
    };
    // Stop accepting connections, let the engine finish what it took in,
    // make it durable and answer it, close the inbox streams, stop the
    // archive and snapshot threads, and release the Cassandra writer lease
    // (a standby takes over at once instead of waiting for it to lapse);
    // all within STOP_WITHIN, or exit with an error saying so.
    println!("{signal}: stopping gracefully (at most {} s)...", STOP_WITHIN.as_secs());
    tracing::info!(signal, "stopping gracefully");
    match tokio::time::timeout(STOP_WITHIN, switch.stop()).await {
        Ok(()) => {
            println!("stopped");
            Ok(())
        }
        Err(_) => anyhow::bail!(
            "the switch did not stop within {} s of {signal}; exiting anyway (acknowledged payments are durable; \
             the next start replays the journal)",
            STOP_WITHIN.as_secs()
        ),
    }
}
