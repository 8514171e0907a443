//! Prometheus metrics, served at `http://METRICS_LISTEN/metrics`.
//!
//! The hot path only bumps atomic counters ([`crate::runtime::Stats`]); a
//! publisher task copies them into the `metrics` registry once a second.
//! Two histograms are recorded directly by the journal thread:
//! `ponte_payment_seconds` (engine intake to durable final outcome) and
//! `ponte_journal_append_seconds` (one group commit, fsync included).

use crate::runtime::EngineHandle;
use metrics_exporter_prometheus::PrometheusBuilder;
use ponte_domain::ReasonCode;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Installs the process-wide Prometheus exporter listening on `addr`.
pub fn install(addr: SocketAddr) -> Result<(), String> {
    let buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&buckets)
        .map_err(|e| e.to_string())?
        .install()
        .map_err(|e| format!("metrics on {addr}: {e}"))
}

/// Copies the engine's counters into the registry every second, until the engine stops.
pub fn spawn_publisher(engine: EngineHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stats = engine.stats_arc();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
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
