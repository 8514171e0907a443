//! The run's report: JSON for machines, an SVG chart for people.

use crate::drive::{Measured, Second};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, serde::Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Settled payments per second over the measured window.
    pub throughput_per_s: f64,
    pub settled: u64,
    pub rejected: u64,
    pub errors: u64,
    /// Latency of settled and rejected payments as the payer saw it, in ms.
    pub latency_ms: Latency,
    pub mode: String,
    pub submission: String,
    pub target: String,
    pub participants: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub rate_per_s: Option<f64>,
    pub window: usize,
    pub reject_rate: f64,
    pub think_time_ms: u64,
    pub rejects_by_reason: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub sent: u64,
    pub unanswered: u64,
    /// Phone keys in the directory during the run.
    pub keys: u64,
    /// Fraction of payments that named a key.
    pub key_share: f64,
    /// The own switch's transfer table, built at start for this many
    /// transfers (`engine.transfers_capacity`); `None` with `--target`.
    pub transfers_capacity: Option<u64>,
    /// How long registering the keys took (over gRPC, before the run).
    pub key_registration_s: Option<f64>,
    /// The echo ceiling measured in the same run (messages/s through
    /// tonic + TLS with no switch behind), when it was measured.
    pub echo_ceiling_per_s: Option<f64>,
    /// `throughput_per_s / echo_ceiling_per_s`.
    pub ratio_to_echo: Option<f64>,
    /// The bulk disbursement envelope paid beside the load (`--envelope N`).
    pub envelope: Option<crate::envelope::EnvelopeRun>,
    /// The own switch's payment-stream messages over the measured window,
    /// by kind (`submits`, `results`, `inbox`, `answers`); `None` with `--target`.
    pub stream_messages: Option<BTreeMap<String, StreamKind>>,
    pub machine: Machine,
    pub seconds: Vec<Second>,
}

/// One kind of stream message, over the measured window.
#[derive(Debug, serde::Serialize)]
pub struct StreamKind {
    pub messages_per_s: f64,
    /// Payments, results, events or answers per message.
    pub items_per_message: f64,
}

/// Messages and items of each kind, as the switch counted them.
pub type TrafficSnapshot = Vec<(&'static str, u64, u64)>;

pub fn snapshot(stats: &ponte_switch::runtime::Stats) -> TrafficSnapshot {
    use std::sync::atomic::Ordering::Relaxed;
    stats.streams.kinds().iter().map(|(k, t)| (*k, t.messages.load(Relaxed), t.items.load(Relaxed))).collect()
}

/// What each kind carried between two snapshots `seconds` apart.
pub fn stream_messages(
    before: &TrafficSnapshot,
    after: &TrafficSnapshot,
    seconds: f64,
) -> BTreeMap<String, StreamKind> {
    before
        .iter()
        .zip(after)
        .map(|((kind, m0, i0), (_, m1, i1))| {
            let messages = m1.saturating_sub(*m0);
            let items = i1.saturating_sub(*i0);
            let kind_traffic = StreamKind {
                messages_per_s: messages as f64 / seconds,
                items_per_message: if messages == 0 { 0.0 } else { items as f64 / messages as f64 },
            };
            (kind.to_string(), kind_traffic)
        })
        .collect()
}

#[derive(Debug, serde::Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub date_utc: String,
    /// The CPU the run had over its measured window (Linux only).
    pub cpu: Option<CpuUse>,
}

/// The CPU a run had over its measured window, read from Linux's `/proc`.
/// On a virtual machine the same command can measure very differently from
/// one minute to the next; these say how much machine the run really had.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CpuUse {
    /// Cores this process kept busy: the load generator, and the switch
    /// when the tool started its own.
    pub process_cores: f64,
    /// Of those, the cores the load generator's own threads (`load*`) kept
    /// busy; the rest is the switch (when the tool started its own).
    pub generator_cores: f64,
    /// Share of the machine's CPU time its hypervisor gave to others
    /// (steal): the run had that much less machine than it appeared to.
    pub steal_share: f64,
}

/// Steal over this share of the window is worth a warning beside the figures.
pub const STEAL_WARN_SHARE: f64 = 0.05;

/// User + system clock ticks of a `/proc/.../stat` line. "pid (comm) state
/// ppid ...": the name may hold spaces and parentheses, so fields are
/// counted after its last ')'; utime and stime are fields 14 and 15, the
/// 12th and 13th after it.
fn process_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A reading of the machine's and this process's CPU time counters.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// Online CPUs (the `cpuN` lines of `/proc/stat`).
    cpus: usize,
    /// This process's user + system time (clock ticks).
    process: u64,
    /// The same for the load generator's threads (named `load*`).
    generator: u64,
    /// The machine's steal and total time over all CPUs (clock ticks).
    steal: u64,
    total: u64,
}

impl CpuSample {
    /// Reads the counters now; `None` where there is no `/proc`.
    pub fn now() -> Option<CpuSample> {
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let process = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut sample = CpuSample::parse(&machine, &process)?;
        sample.generator = std::fs::read_dir("/proc/self/task")
            .ok()?
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
            .filter(|stat| stat.split_once('(').is_some_and(|(_, name)| name.starts_with("load")))
            .filter_map(|stat| process_ticks(&stat))
            .sum();
        Some(sample)
    }

    fn parse(machine: &str, process: &str) -> Option<CpuSample> {
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
        // (guest time is already counted in user).
        let times: Vec<u64> = machine
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        if times.len() < 8 {
            return None;
        }
        let cpus = machine
            .lines()
            .filter(|l| l.strip_prefix("cpu").is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())))
            .count();
        Some(CpuSample {
            cpus: cpus.max(1),
            process: process_ticks(process)?,
            generator: 0,
            steal: times[7],
            total: times.iter().sum(),
        })
    }

    /// What the CPU did between this reading and `later`.
    pub fn until(&self, later: &CpuSample) -> Option<CpuUse> {
        let total = later.total.checked_sub(self.total).filter(|&t| t > 0)? as f64;
        let process = later.process.saturating_sub(self.process) as f64;
        let generator = later.generator.saturating_sub(self.generator) as f64;
        let steal = later.steal.saturating_sub(self.steal) as f64;
        Some(CpuUse {
            process_cores: (process * self.cpus as f64 / total * 100.0).round() / 100.0,
            generator_cores: (generator * self.cpus as f64 / total * 100.0).round() / 100.0,
            steal_share: (steal / total * 1000.0).round() / 1000.0,
        })
    }
}

impl Machine {
    pub fn here(cpu: Option<CpuUse>) -> Machine {
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        let now = time::OffsetDateTime::now_utc();
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            date_utc: format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day()),
            cpu,
        }
    }
}

pub fn latency(measured: &Measured) -> Latency {
    let h = &measured.latency_us;
    let ms = |q: f64| {
        if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1000.0 }
    };
    Latency {
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        p999: ms(0.999),
        max: if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 },
    }
}

/// Writes `report` as JSON to `path` and the chart beside it (`.svg`).
pub fn write(report: &Report, path: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::write(path, serde_json::to_string_pretty(report)?)?;
    let svg_path = path.with_extension("svg");
    std::fs::write(&svg_path, chart(report))?;
    Ok(svg_path)
}

/// Two panels over time: settled payments per second, and p50/p99 latency.
pub fn chart(report: &Report) -> String {
    let seconds = &report.seconds;
    let max_tp = seconds.iter().map(|s| s.settled).max().unwrap_or(1).max(1) as f64 * 1.1;
    let max_lat = seconds.iter().map(|s| s.p99_ms).fold(1.0_f64, f64::max) * 1.1;
    let title = format!(
        "Ponte load test: {:.0} settled/s, p99 {:.2} ms ({} submission, {})",
        report.throughput_per_s, report.latency_ms.p99, report.submission, report.mode
    );
    let mut chart = Chart::new(300.0, 2, &title);
    chart.panel(
        0,
        "settled payments per second",
        max_tp,
        &[("settled/s", "#1f77b4", seconds.iter().map(|s| s.settled as f64).collect())],
    );
    chart.panel(
        1,
        "latency (ms) as the payer sees it",
        max_lat,
        &[
            ("p50", "#2ca02c", seconds.iter().map(|s| s.p50_ms).collect()),
            ("p99", "#d62728", seconds.iter().map(|s| s.p99_ms).collect()),
        ],
    );
    chart.finish()
}

/// A named series of a panel: (name, colour, one value per second).
pub type Series<'a> = (&'a str, &'a str, Vec<f64>);

/// An SVG of panels stacked over time (the load test's and the soak's charts).
pub struct Chart {
    svg: String,
    w: f64,
    h: f64,
    pad: f64,
}

impl Chart {
    /// A chart of `panels` panels, each `h` high, under `title`.
    pub fn new(h: f64, panels: usize, title: &str) -> Chart {
        let (w, pad) = (900.0, 60.0);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="12">"#,
            panels as f64 * h + 40.0
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(svg, r#"<text x="{pad}" y="20" font-size="14">{title}</text>"#);
        Chart { svg, w, h, pad }
    }

    /// Panel `index` (from the top): its title, axes up to `max`, and each
    /// series as a line with its name.
    pub fn panel(&mut self, index: usize, title: &str, max: f64, series: &[Series<'_>]) {
        let (w, h, pad, svg) = (self.w, self.h, self.pad, &mut self.svg);
        let top = 30.0 + h * index as f64;
        let n = series.first().map_or(0, |s| s.2.len()).max(2) as f64;
        let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1.0);
        let bottom = top + h - pad;
        let y = |v: f64| bottom - (bottom - top - 20.0) * v / max;
        let _ = writeln!(svg, r#"<text x="{pad}" y="{}">{title}</text>"#, top + 12.0);
        let _ = writeln!(svg, r#"<line x1="{pad}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/>"#, w - pad);
        let _ = writeln!(svg, r#"<line x1="{pad}" y1="{}" x2="{pad}" y2="{bottom}" stroke="black"/>"#, top + 20.0);
        for frac in [0.0, 0.5, 1.0] {
            let v = max * frac;
            let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">{:.1}</text>"#, pad - 4.0, y(v) + 4.0, v);
        }
        let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">seconds</text>"#, w - pad, bottom + 16.0);
        for (i, (name, color, values)) in series.iter().enumerate() {
            let points: Vec<String> =
                values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
                w - pad - 120.0 + 60.0 * i as f64,
                top + 12.0
            );
        }
    }

    pub fn finish(mut self) -> String {
        self.svg.push_str("</svg>\n");
        self.svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: &str = "cpu  1000 0 500 8000 100 0 50 350 0 0\ncpu0 500 0 250 4000 50 0 25 175 0 0\ncpu1 500 0 250 4000 50 0 25 175 0 0\nintr 1 2 3\n";

    fn process(utime: u64, stime: u64) -> String {
        // A name with a space and a parenthesis, as a thread may be named.
        format!("4242 (ponte (load) x) R 1 4242 4242 0 -1 4194304 10 0 0 0 {utime} {stime} 0 0 20 0 9 0 5 0 0")
    }

    #[test]
    fn cpu_counters_are_read_after_the_process_name_and_over_every_cpu() {
        let sample = CpuSample::parse(MACHINE, &process(70, 30)).expect("parses");
        assert_eq!((sample.cpus, sample.process, sample.steal, sample.total), (2, 100, 350, 10_000));
        assert!(CpuSample::parse("intr 1 2\n", &process(1, 1)).is_none(), "no cpu line");
        assert!(CpuSample::parse(MACHINE, "4242 (short) R 1").is_none(), "no utime");
    }

    #[test]
    fn cpu_use_is_cores_of_the_machine_and_a_share_stolen() {
        let before = CpuSample::parse(MACHINE, &process(70, 30)).unwrap();
        // One second later on 2 CPUs at 100 ticks/s: 200 ticks, of which
        // the process used 150 and the hypervisor took 20.
        let later = CpuSample { process: 250, steal: 370, total: 10_200, ..before };
        assert_eq!(before.until(&later), Some(CpuUse { process_cores: 1.5, generator_cores: 0.0, steal_share: 0.1 }));
        assert_eq!(later.until(&before), None, "counters that went back say nothing");
        assert_eq!(before.until(&before), None, "no time passed");
    }
}
