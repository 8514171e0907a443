//! What a load run records: each result's latency and kind, per second and
//! over the measured window, and the progress line.

use hdrhistogram::Histogram;
use ponte_proto::v1 as pb;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one second of the run looked like.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Second {
    pub second: u64,
    pub settled: u64,
    pub rejected: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Everything measured.
#[derive(Debug)]
pub struct Measured {
    /// Latency (microseconds) of payments completed inside the measured window.
    pub latency_us: Histogram<u64>,
    pub settled: u64,
    pub rejected: u64,
    pub errors: u64,
    pub rejects_by_reason: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub seconds: Vec<Second>,
    /// Length of the measured window.
    pub measured: Duration,
    /// Payments sent in total (including warm-up).
    pub sent: u64,
    /// Payments never answered before the drain ended.
    pub unanswered: u64,
}

pub(crate) struct Recorder {
    pub(crate) start: Instant,
    pub(crate) measure_from: Instant,
    pub(crate) measure_until: Instant,
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) second_hist: Vec<Histogram<u64>>,
    pub(crate) seconds: Vec<Second>,
    pub(crate) settled: u64,
    pub(crate) rejected: u64,
    pub(crate) errors: u64,
    pub(crate) rejects_by_reason: BTreeMap<String, u64>,
    pub(crate) errors_by_kind: BTreeMap<String, u64>,
    pub(crate) sent: u64,
    pub(crate) answered: u64,
}

pub(crate) enum Result_ {
    Settled,
    Rejected(String),
    Error(String),
}

impl Recorder {
    pub(crate) fn new(start: Instant, warmup: Duration, duration: Duration) -> Recorder {
        Recorder {
            start,
            measure_from: start + warmup,
            measure_until: start + warmup + duration,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            second_hist: Vec::new(),
            seconds: Vec::new(),
            settled: 0,
            rejected: 0,
            errors: 0,
            rejects_by_reason: BTreeMap::new(),
            errors_by_kind: BTreeMap::new(),
            sent: 0,
            answered: 0,
        }
    }

    pub(crate) fn record(&mut self, now: Instant, latency: Duration, result: Result_) {
        self.answered += 1;
        let second = now.saturating_duration_since(self.start).as_secs();
        while self.seconds.len() as u64 <= second {
            let s = self.seconds.len() as u64;
            self.seconds.push(Second { second: s, settled: 0, rejected: 0, errors: 0, p50_ms: 0.0, p99_ms: 0.0 });
            self.second_hist.push(Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds"));
        }
        let us = (latency.as_micros() as u64).clamp(1, 600_000_000);
        let slot = &mut self.seconds[second as usize];
        match &result {
            Result_::Settled => slot.settled += 1,
            Result_::Rejected(_) => slot.rejected += 1,
            Result_::Error(_) => slot.errors += 1,
        }
        if !matches!(result, Result_::Error(_)) {
            let _ = self.second_hist[second as usize].record(us);
        }
        if now < self.measure_from || now >= self.measure_until {
            return;
        }
        match result {
            Result_::Settled => {
                self.settled += 1;
                let _ = self.latency_us.record(us);
            }
            Result_::Rejected(reason) => {
                self.rejected += 1;
                let _ = self.latency_us.record(us);
                *self.rejects_by_reason.entry(reason).or_default() += 1;
            }
            Result_::Error(kind) => {
                self.errors += 1;
                *self.errors_by_kind.entry(kind).or_default() += 1;
            }
        }
    }
}

pub(crate) fn classify(result: &pb::PaymentResult) -> Result_ {
    if let Some(error) = &result.error {
        return Result_::Error(format!("{:?}", tonic::Code::from(error.grpc_code)));
    }
    match pb::PaymentStatus::try_from(result.status) {
        Ok(pb::PaymentStatus::Settled) => Result_::Settled,
        Ok(pb::PaymentStatus::Rejected) => {
            Result_::Rejected(result.reason.as_ref().map(|r| r.code.clone()).unwrap_or_default())
        }
        _ => Result_::Error("non-final status".into()),
    }
}

/// Prints a line a second: throughput, latency and payments in flight.
pub(crate) fn spawn_progress(
    recorder: Arc<Mutex<Recorder>>,
    inflight: Arc<std::sync::atomic::AtomicI64>,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let r = recorder.lock().expect("recorder");
            let elapsed = start.elapsed().as_secs();
            if let Some(last) = elapsed.checked_sub(1).and_then(|s| r.seconds.get(s as usize)) {
                let hist = &r.second_hist[last.second as usize];
                eprintln!(
                    "[{:>4}s] {:>8} settled/s {:>6} rejected/s {:>5} errors/s  p50 {:>7.2} ms  p99 {:>7.2} ms  in flight {:>6}",
                    elapsed,
                    last.settled,
                    last.rejected,
                    last.errors,
                    hist.value_at_quantile(0.5) as f64 / 1000.0,
                    hist.value_at_quantile(0.99) as f64 / 1000.0,
                    inflight.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
        }
    })
}

/// The run's figures from what the recorder saw.
pub(crate) fn measured(mut r: Recorder, duration: Duration) -> Measured {
    for (second, hist) in r.seconds.iter_mut().zip(&r.second_hist) {
        if !hist.is_empty() {
            second.p50_ms = hist.value_at_quantile(0.5) as f64 / 1000.0;
            second.p99_ms = hist.value_at_quantile(0.99) as f64 / 1000.0;
        }
    }
    Measured {
        latency_us: r.latency_us,
        settled: r.settled,
        rejected: r.rejected,
        errors: r.errors,
        rejects_by_reason: r.rejects_by_reason,
        errors_by_kind: r.errors_by_kind,
        seconds: r.seconds,
        measured: duration,
        sent: r.sent,
        unanswered: r.sent.saturating_sub(r.answered),
    }
}
