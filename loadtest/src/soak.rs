//! Soak mode: the switch as a separate process, watched for hours.
//!
//! The load test starts its own binary as the switch (`--serve-config`), so
//! the switch's resident memory is its own and it can be killed. While the
//! load runs, a sampler reads the switch's resident memory and its data
//! directory's size once a second; after the run the switch is SIGKILLed
//! and restarted on the same data directory, and the time until it serves
//! again is the restart time. The report (`soak.json`) and its chart
//! (`soak.svg`) show whether memory and disk stay in a band while payments
//! pile up.

use crate::report::Chart;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the child prints once it serves, before its endpoint.
pub const SERVING: &str = "soak switch serving on ";

/// A switch running as a child process.
pub struct SwitchProcess {
    pub child: Child,
    pub endpoint: String,
}

impl Drop for SwitchProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this binary as a switch with the configuration at `config` and
/// waits (at most `within`) until it serves.
pub fn spawn(config: &Path, within: Duration) -> anyhow::Result<SwitchProcess> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve-config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(endpoint) = line.strip_prefix(SERVING) {
                let _ = tx.send(endpoint.to_owned());
            }
        }
    });
    match rx.recv_timeout(within) {
        Ok(endpoint) => Ok(SwitchProcess { child, endpoint }),
        Err(_) => {
            let _ = child.kill();
            anyhow::bail!("the soak switch did not serve within {} s", within.as_secs())
        }
    }
}

/// SIGKILLs the switch, starts it again on the same configuration, and
/// returns it with the milliseconds until it served.
pub fn kill_and_restart(mut switch: SwitchProcess, config: &Path) -> anyhow::Result<(SwitchProcess, u64)> {
    switch.child.kill()?;
    switch.child.wait()?;
    let started = Instant::now();
    let restarted = spawn(config, Duration::from_secs(600))?;
    Ok((restarted, started.elapsed().as_millis() as u64))
}

/// Resident memory of process `pid`, in bytes (Linux `/proc`).
pub fn resident_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages = statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
    pages * 4096
}

/// Bytes of the files under `dir`, recursively.
pub fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One second of a soak.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    pub rss_bytes: u64,
    pub disk_bytes: u64,
}

/// Samples `pid` and `dir` once a second until `stop` is set.
pub async fn sample(pid: u32, dir: PathBuf, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let dir = dir.clone();
        let disk = tokio::task::spawn_blocking(move || disk_bytes(&dir)).await.unwrap_or(0);
        samples.push(Sample { rss_bytes: resident_bytes(pid), disk_bytes: disk });
    }
    samples
}

/// The soak report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakReport {
    pub store: String,
    pub duration_s: f64,
    pub settled: u64,
    pub throughput_per_s: Vec<u64>,
    pub rss_bytes: Vec<u64>,
    pub disk_bytes: Vec<u64>,
    /// SIGKILL to serving again on the same data directory.
    pub restart_ms: u64,
    /// The switch's duplicate window (`engine.id_age_ms_max`), how long
    /// final transfers keep their full record, and the snapshot interval.
    pub id_age_ms_max: i64,
    pub final_record_ms: i64,
    pub snapshot_every_ms: u64,
    /// Over the last 80% of the samples: mean resident memory, and the
    /// largest distance from it as a share of it.
    pub rss_last80_mean_bytes: u64,
    pub rss_last80_max_deviation: f64,
}

impl SoakReport {
    pub fn new(
        store: String,
        measured: &crate::drive::Measured,
        samples: &[Sample],
        restart_ms: u64,
        config: &ponte_switch::server::Config,
    ) -> SoakReport {
        let rss: Vec<u64> = samples.iter().map(|s| s.rss_bytes).collect();
        let (rss_last80_mean_bytes, rss_last80_max_deviation) = band(&rss);
        SoakReport {
            store,
            duration_s: measured.measured.as_secs_f64(),
            settled: measured.settled,
            throughput_per_s: measured.seconds.iter().map(|s| s.settled).collect(),
            rss_bytes: rss,
            disk_bytes: samples.iter().map(|s| s.disk_bytes).collect(),
            restart_ms,
            id_age_ms_max: config.engine.id_age_ms_max,
            final_record_ms: config.engine.final_record_ms,
            snapshot_every_ms: config.runtime.snapshot_every_ms,
            rss_last80_mean_bytes,
            rss_last80_max_deviation,
        }
    }
}

/// Writes the report to `out` and its chart beside it, and prints the summary.
pub fn write(report: &SoakReport, out: &Path) -> anyhow::Result<()> {
    std::fs::write(out, serde_json::to_string_pretty(report)?)?;
    let svg = out.with_extension("svg");
    std::fs::write(&svg, chart(report))?;
    println!(
        "soak: {} settled in {:.0} s ({:.0}/s); resident memory over the last 80%: mean {} MB, within {:.1}%; \
         data directory at the end {} MB; restart after SIGKILL {} ms",
        report.settled,
        report.duration_s,
        report.settled as f64 / report.duration_s.max(1e-9),
        report.rss_last80_mean_bytes / 1_000_000,
        report.rss_last80_max_deviation * 100.0,
        report.disk_bytes.last().copied().unwrap_or(0) / 1_000_000,
        report.restart_ms
    );
    println!("report: {} and {}", out.display(), svg.display());
    Ok(())
}

/// Mean of the last 80% of `values`, and the largest relative distance from it.
pub fn band(values: &[u64]) -> (u64, f64) {
    let tail = &values[values.len() / 5..];
    if tail.is_empty() {
        return (0, 0.0);
    }
    let mean = tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len() as f64;
    let deviation = tail.iter().map(|&v| (v as f64 - mean).abs() / mean.max(1.0)).fold(0.0, f64::max);
    (mean as u64, deviation)
}

/// Three panels over time: resident memory, data directory size, and
/// settled payments per second.
pub fn chart(report: &SoakReport) -> String {
    let title = format!(
        "Ponte soak: {} settled in {:.0} s, restart {} ms ({})",
        report.settled, report.duration_s, report.restart_ms, report.store
    );
    let mb = |v: &u64| *v as f64 / 1e6;
    let panels = [
        ("resident memory (MB)", ("RSS", "#1f77b4", report.rss_bytes.iter().map(mb).collect::<Vec<_>>())),
        ("data directory (MB)", ("disk", "#ff7f0e", report.disk_bytes.iter().map(mb).collect())),
        (
            "settled payments per second",
            ("settled/s", "#2ca02c", report.throughput_per_s.iter().map(|v| *v as f64).collect()),
        ),
    ];
    let mut chart = Chart::new(220.0, panels.len(), &title);
    for (index, (title, series)) in panels.into_iter().enumerate() {
        let max = series.2.iter().copied().fold(1.0_f64, f64::max) * 1.1;
        chart.panel(index, title, max, &[series]);
    }
    chart.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_measured_over_the_last_eighty_percent() {
        // A warm-up ramp, then a steady band of 100 +- 10.
        let values = [10, 20, 90, 100, 110, 100, 90, 100, 110, 100];
        let (mean, deviation) = band(&values);
        assert_eq!(mean, 100);
        assert!((deviation - 0.1).abs() < 1e-9, "{deviation}");
        assert_eq!(band(&[]), (0, 0.0));
    }

    #[test]
    fn the_data_directory_size_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("snapshots")).unwrap();
        std::fs::write(dir.path().join("journal.redb"), [0_u8; 1000]).unwrap();
        std::fs::write(dir.path().join("snapshots/s.bin"), [0_u8; 24]).unwrap();
        assert_eq!(disk_bytes(dir.path()), 1024);
        assert_eq!(disk_bytes(&dir.path().join("missing")), 0);
    }
}
