//! Prometheus metrics, served at `http://METRICS_LISTEN/metrics`, beside
//! the probes a service manager or an orchestrator asks (plain HTTP, on the
//! same listener, which a standby also opens):
//! - `/healthz`: 200 while the process works (starting, a standby, serving,
//!   stopping); 503 once its journal store failed or another node fenced it.
//! - `/readyz`: 200 only while this node is the writer and serves; 503 with
//!   the reason otherwise (starting, a standby following the writer,
//!   stopping, failed). A load balancer sends calls only where it is 200.
//! - anything else: 404.
//!
//! The hot path only bumps atomic counters ([`crate::runtime::Stats`]); a
//! publisher task copies them into the `metrics` registry once a second.
//! Two histograms are recorded directly by the journal thread:
//! `ponte_payment_seconds` (engine intake to durable final outcome) and
//! `ponte_journal_append_seconds` (one group commit, fsync included).

use crate::runtime::EngineHandle;
use bytes::Bytes;
use http_body_util::Full;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ponte_domain::ReasonCode;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// Where this process stands, for `/healthz` and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Starting = 0,
    /// Following another node's journal (Cassandra); takes over when it stops.
    Standby = 1,
    Serving = 2,
    Stopping = 3,
    /// The journal store failed or another writer fenced this node.
    Failed = 4,
}

static STATE: AtomicU8 = AtomicU8::new(State::Starting as u8);
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Says where this process stands (process-wide, as the metrics are).
pub fn set_state(state: State) {
    // A failed node stays failed.
    let _ = STATE
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| (now != State::Failed as u8).then_some(state as u8));
}

pub fn state() -> State {
    match STATE.load(Ordering::Acquire) {
        0 => State::Starting,
        1 => State::Standby,
        2 => State::Serving,
        3 => State::Stopping,
        _ => State::Failed,
    }
}

/// The build, for `ponte_build_info` and `--version`: the crate version
/// and the commit it was built from (`unknown` outside a git checkout).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("PONTE_COMMIT");
/// `VERSION (commit COMMIT)`, as `ponte --version` prints it.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PONTE_COMMIT"), ")");

/// Installs the process-wide Prometheus recorder and serves it, with the
/// probes, on `addr`.
pub async fn install(addr: SocketAddr) -> Result<(), String> {
    let buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("metrics on {addr}: {e}"))?;
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("metrics on {addr}: {e}"))?;
    let _ = HANDLE.set(handle.clone());
    metrics::gauge!("ponte_build_info", "version" => VERSION, "commit" => COMMIT).set(1.0);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = answer(&handle, &request);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .header_read_timeout(Duration::from_secs(10))
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(())
}

/// The answer to one request of the metrics listener.
fn answer<B>(handle: &PrometheusHandle, request: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, kind: &str, body: String| {
        hyper::Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, kind)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    let text = |status: u16, body: &str| reply(status, "text/plain; charset=utf-8", format!("{body}\n"));
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return text(405, "use GET");
    }
    let state = state();
    let why = |state: State| match state {
        State::Starting => "starting",
        State::Standby => "standby: following the journal writer, taking over when it stops",
        State::Serving => "serving",
        State::Stopping => "stopping",
        State::Failed => "failed: the journal store failed or another node fenced this one",
    };
    match request.uri().path() {
        "/metrics" => reply(200, "text/plain; version=0.0.4; charset=utf-8", handle.render()),
        "/healthz" if state == State::Failed => text(503, why(state)),
        "/healthz" => text(200, why(state)),
        "/readyz" if state == State::Serving => text(200, why(state)),
        "/readyz" => text(503, why(state)),
        _ => text(404, "not found: /metrics, /healthz and /readyz are served here"),
    }
}

/// Copies the engine's counters into the registry every second, until the engine stops.
pub fn spawn_publisher(engine: EngineHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stats = engine.stats_arc();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(handle) = HANDLE.get() {
                handle.run_upkeep();
            }
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            metrics::counter!("ponte_payments_settled_total").absolute(load(&stats.settled));
            metrics::counter!("ponte_payments_rejected_total").absolute(load(&stats.rejected));
            for reason in ReasonCode::ALL {
                let count = stats.rejects_by_reason.get(*reason);
                if count > 0 {
                    metrics::counter!("ponte_rejects_total", "reason" => reason.code()).absolute(count);
                }
            }
            metrics::counter!("ponte_commands_total").absolute(load(&stats.commands));
            metrics::counter!("ponte_engine_batches_total").absolute(load(&stats.batches));
            metrics::counter!("ponte_journal_events_total").absolute(load(&stats.events));
            metrics::counter!("ponte_journal_fsyncs_total").absolute(load(&stats.fsyncs));
            metrics::counter!("ponte_overloaded_total").absolute(load(&stats.overloaded));
            metrics::counter!("ponte_inbox_frames_dropped_total").absolute(load(&stats.inbox_frames_dropped));
            metrics::counter!("ponte_answers_ignored_total").absolute(load(&stats.answers_ignored));
            metrics::counter!("ponte_answers_refused_total").absolute(load(&stats.answers_refused));
            for (kind, traffic) in stats.streams.kinds() {
                metrics::counter!("ponte_stream_messages_total", "kind" => kind).absolute(load(&traffic.messages));
                metrics::counter!("ponte_stream_items_total", "kind" => kind).absolute(load(&traffic.items));
            }
            metrics::counter!("ponte_snapshots_written_total").absolute(load(&stats.snapshots_written));
            metrics::counter!("ponte_snapshot_failures_total").absolute(load(&stats.snapshot_failures));
            metrics::gauge!("ponte_snapshot_journal_records").set(load(&stats.snapshot_records) as f64);
            metrics::gauge!("ponte_snapshot_bytes").set(load(&stats.snapshot_bytes) as f64);
            metrics::gauge!("ponte_transfers_held").set(load(&stats.transfers_held) as f64);
            metrics::gauge!("ponte_transfers_in_window").set(load(&stats.transfers_in_window) as f64);
            let available = !stats.store_unavailable.load(std::sync::atomic::Ordering::Relaxed);
            metrics::gauge!("ponte_store_available").set(if available { 1.0 } else { 0.0 });
            metrics::gauge!("ponte_transfers_evicted").set(load(&stats.transfers_evicted) as f64);
            metrics::gauge!("ponte_envelope_items_archived").set(load(&stats.envelope_items_archived) as f64);
            metrics::gauge!("ponte_journal_records").set(load(&stats.journal_records) as f64);
            metrics::gauge!("ponte_payments_reserved").set(load(&stats.reserved) as f64);
            metrics::gauge!("ponte_request_queue_depth").set(engine.request_queue_depth() as f64);
            metrics::gauge!("ponte_journal_queue_depth").set(stats.journal_queue_depth.load(Ordering::Relaxed) as f64);
        }
    })
}
