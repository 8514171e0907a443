//! `ponte-loadtest`: drive a Ponte switch like a country would, and report.
//!
//! With no arguments it starts its own switch (embedded journal with fsync
//! group commit, mTLS, a fresh temporary data directory) and 20 simulated
//! participants, first measures the echo ceiling of tonic + TLS on this
//! machine, then runs the switch at maximum throughput over submit streams.

use clap::Parser;

// mimalloc: tonic, HTTP/2 and protobuf make many small, short-lived
// allocations across threads; glibc's malloc spent ~15% of a loaded
// switch's CPU on them (perf, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ponte_domain::ParticipantId;
use ponte_loadtest::country::{self, Bank};
use ponte_loadtest::drive::{self, LoadConfig, Submission};
use ponte_loadtest::echo::EchoServer;
use ponte_loadtest::payee::SimulatedPayee;
use ponte_loadtest::report::{self, Machine, Report};
use ponte_loadtest::soak;
use ponte_sdk::{Client, Identity};
use ponte_switch::net::tls::DevPki;
use ponte_switch::server::{self, Config, DevParticipant};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "ponte-loadtest", about = "Load generator for a Ponte switch")]
struct Args {
    /// Measured duration (after warm-up), e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before the measured window.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Where to write the JSON report; the SVG chart goes beside it.
    #[arg(long, default_value = "report.json")]
    out: PathBuf,
    /// Simulated participants (own switch only).
    #[arg(long, default_value_t = 20)]
    participants: usize,
    /// Fraction of payments payees reject (AC03).
    #[arg(long, default_value_t = 0.01)]
    reject_rate: f64,
    /// Payee think time in milliseconds.
    #[arg(long, default_value_t = 0)]
    think_time_ms: u64,
    /// Open loop at this many payments per second in total (default: closed loop, max throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// One unary call per payment instead of submit streams.
    #[arg(long)]
    unary: bool,
    /// Payments in flight at once over all participants (streams: default 16384; unary: concurrent callers, default 512).
    #[arg(long)]
    window: Option<usize>,
    /// Payments per stream message.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Drive an already running switch at HOST:PORT instead of starting one.
    #[arg(long)]
    target: Option<String>,
    /// With --target: directory with ca.pem and each participant's CODE.pem/CODE.key.
    #[arg(long, default_value = "ponte-data/certs")]
    certs: PathBuf,
    /// With --target: the participant codes to use (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "10000001,10000002,10000003")]
    codes: Vec<ParticipantId>,
    /// Seconds of echo-ceiling measurement before the run (0 to skip).
    #[arg(long, default_value_t = 5)]
    echo_seconds: u64,
    /// Payee deadline of the switch this tool starts, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    payee_timeout_ms: i64,
    /// Phone keys to register in the directory before the run [default:
    /// 1,000,000 on its own switch, 0 with --target].
    #[arg(long)]
    keys: Option<u64>,
    /// Fraction of payments that pay a key instead of an account.
    #[arg(long, default_value_t = 0.5)]
    key_share: f64,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Journal store of the load test's own switch: `embedded` (a fresh temp
    /// directory) or `cql://HOST:PORT/KEYSPACE` for Apache Cassandra /
    /// ScyllaDB (use a new keyspace per run) [default: embedded].
    #[arg(long)]
    store: Option<String>,
    /// Also pay one bulk disbursement envelope of this many items (up to
    /// 1,000,000) from the largest participant, beside the retail load.
    #[arg(long, default_value_t = 0)]
    envelope: u32,
    /// Disbursement pace of the load test's own switch, items per second.
    #[arg(long, default_value_t = 50_000)]
    envelope_rate: u32,
    /// Transfers the load test's own switch builds its table for at start
    /// (`engine.transfers_capacity`), as an operator sizes a switch for its
    /// day [default: what the run can send: --rate, or 250,000/s closed
    /// loop, over warm-up and duration, plus the envelope; 0 grows the
    /// table as payments arrive].
    #[arg(long)]
    transfers_capacity: Option<u64>,
    /// Soak mode: run the switch as a separate process, sample its resident
    /// memory and data directory once a second, then SIGKILL it and time a
    /// restart; writes `--out` (e.g. soak.json) and a chart beside it.
    #[arg(long)]
    soak: bool,
    /// Soak: the switch's duplicate window (`engine.id_age_ms_max`), short so
    /// that the steady state comes in minutes. Ids carry their minute, so
    /// keep it over 60 s.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    soak_window: Duration,
    /// Soak: how long a final transfer keeps its full record in the
    /// switch's memory (`engine.final_record_ms`) before only its
    /// duplicate-window entry stays; scaled down with the window.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    soak_final_record: Duration,
    /// Soak: the switch's snapshot interval (`runtime.snapshot_every_ms`).
    /// A restart replays the journal since the newest snapshot: up to this
    /// interval and the snapshot's own writing time of traffic.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    snapshot_every: Duration,
    /// Soak: keep the switch's data (and its configuration, `soak.toml`) in
    /// this new directory after the run, to restart or profile it again
    /// (`--serve-config DIR/soak.toml`) [default: a temporary directory,
    /// removed].
    #[arg(long)]
    soak_keep: Option<PathBuf>,
    /// ISO 20022 mode: the banks speak XML to the switch's ISO 20022
    /// gateway (pacs.008 of --batch payments in, pacs.002 out; inboxes
    /// answer pacs.008 with pacs.002) instead of gRPC; writes `--out`.
    #[arg(long)]
    iso20022: bool,
    /// ISO 20022 mode: pacs.008 documents each bank keeps in flight.
    #[arg(long, default_value_t = 4)]
    iso_inflight: usize,
    /// Runs as the soak's switch with this configuration file (used by --soak).
    #[arg(long, hide = true)]
    serve_config: Option<PathBuf>,
}

/// The transfers a run can create, for sizing its own switch's table.
fn run_volume(args: &Args) -> u64 {
    const CLOSED_LOOP_MAX_PER_S: f64 = 250_000.0;
    let seconds = (args.duration + args.warmup).as_secs_f64() + 1.0;
    let per_s = args.rate.unwrap_or(CLOSED_LOOP_MAX_PER_S);
    (per_s * seconds * 1.1) as u64 + u64::from(args.envelope)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let keys = check_args(&args)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(config) = &args.serve_config {
        return serve_child(config);
    }
    if args.soak {
        return run_soak(&args, keys);
    }
    if args.iso20022 {
        return run_iso(&args);
    }
    // The switch (when this tool starts one) runs on its own runtime, so
    // the load generator's tasks and the switch's do not share a scheduler
    // queue — as close to separate processes as one binary gets.
    let runtimes = Runtimes::new()?;
    let scratch = tempfile::tempdir()?;
    let echo_ceiling = measure_echo(&args, &runtimes, scratch.path())?;
    let transfers_capacity =
        args.target.is_none().then(|| args.transfers_capacity.unwrap_or_else(|| run_volume(&args)));
    let under_test = switch_under_test(&args, &runtimes, scratch.path(), transfers_capacity)?;
    let mode = if args.rate.is_some() { "open loop" } else { "closed loop" };
    eprintln!(
        "driving {}: {} participants, {} submission, {mode}, {} s (+{} s warm-up)",
        under_test.endpoint,
        under_test.banks.len(),
        if args.unary { "unary" } else { "stream" },
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64()
    );
    let key_registration = register_keys(&args, &runtimes, &under_test, keys)?;
    anyhow::ensure!(args.envelope <= 1_000_000, "--envelope must be at most 1,000,000 items");
    let (measured, envelope, stream_messages, cpu) = runtimes.client.block_on(drive_load(&args, &under_test, keys))?;
    let UnderTest { endpoint, banks, own, .. } = under_test;
    if let Some(switch) = own {
        runtimes.server.block_on(switch.stop());
    }

    let measured_run = MeasuredRun { measured, envelope, stream_messages, cpu, echo_ceiling, key_registration };
    let report = build_report(&args, measured_run, endpoint, banks.len(), keys, transfers_capacity, mode);
    print_summary(&report, &args.out)
}

/// What one run measured, for its report.
struct MeasuredRun {
    measured: drive::Measured,
    envelope: Option<ponte_loadtest::envelope::EnvelopeRun>,
    stream_messages: Option<std::collections::BTreeMap<String, report::StreamKind>>,
    cpu: Option<report::CpuUse>,
    echo_ceiling: Option<f64>,
    key_registration: Option<f64>,
}

fn build_report(
    args: &Args,
    run: MeasuredRun,
    endpoint: String,
    participants: usize,
    keys: u64,
    transfers_capacity: Option<u64>,
    mode: &str,
) -> Report {
    let MeasuredRun { measured, envelope, stream_messages, cpu, echo_ceiling, key_registration } = run;
    let throughput = measured.settled as f64 / measured.measured.as_secs_f64();
    Report {
        throughput_per_s: throughput,
        settled: measured.settled,
        rejected: measured.rejected,
        errors: measured.errors,
        latency_ms: report::latency(&measured),
        mode: mode.into(),
        submission: if args.unary { "unary".into() } else { "stream".into() },
        target: match (&args.target, &args.store) {
            (Some(_), _) => endpoint,
            (None, Some(store)) if store.starts_with("cql://") => {
                format!("own switch (journal on {store}, mTLS)")
            }
            (None, _) => "own switch (embedded store, fsync group commit, mTLS)".into(),
        },
        participants,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        rate_per_s: args.rate,
        window: window(args),
        reject_rate: args.reject_rate,
        think_time_ms: args.think_time_ms,
        rejects_by_reason: measured.rejects_by_reason.clone(),
        errors_by_kind: measured.errors_by_kind.clone(),
        sent: measured.sent,
        unanswered: measured.unanswered,
        keys,
        key_share: if keys > 0 { args.key_share } else { 0.0 },
        transfers_capacity,
        key_registration_s: key_registration,
        echo_ceiling_per_s: echo_ceiling,
        envelope,
        stream_messages,
        ratio_to_echo: echo_ceiling.map(|e| throughput / e),
        machine: Machine::here(cpu),
        seconds: measured.seconds.clone(),
    }
}

/// Checks the arguments; returns how many keys to register.
fn check_args(args: &Args) -> anyhow::Result<u64> {
    anyhow::ensure!((0.0..=1.0).contains(&args.reject_rate), "--reject-rate must be between 0 and 1");
    anyhow::ensure!(args.participants >= 2, "--participants must be at least 2");
    anyhow::ensure!((1..=1024).contains(&args.batch), "--batch must be 1 to 1024");
    anyhow::ensure!((0.0..=1.0).contains(&args.key_share), "--key-share must be between 0 and 1");
    anyhow::ensure!(
        args.store.is_none() || args.target.is_none(),
        "--store is for the load test's own switch, not with --target"
    );
    let keys = args.keys.unwrap_or(if args.target.is_some() { 0 } else { 1_000_000 });
    anyhow::ensure!(keys <= 1_000_000_000, "--keys must be at most 1,000,000,000 (9-digit phone numbers)");
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0, "--rate must be positive");
    }
    Ok(keys)
}

/// The switch's runtime and the load generator's, apart.
struct Runtimes {
    server: tokio::runtime::Runtime,
    client: tokio::runtime::Runtime,
}

impl Runtimes {
    /// Two threads each; the generator's are named `load*`, which is how
    /// the report tells their CPU from the switch's.
    fn new() -> std::io::Result<Runtimes> {
        let runtime = |name: &str| {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).enable_all().build()
        };
        Ok(Runtimes { server: runtime("switch")?, client: runtime("load")? })
    }
}

/// The switch being driven: its address, certificates, participants, and
/// the switch itself when this tool started it.
struct UnderTest {
    endpoint: String,
    certs: PathBuf,
    banks: Vec<Bank>,
    own: Option<server::RunningSwitch>,
}

/// The echo ceiling (the same messages through tonic and TLS with no
/// switch behind), measured in this run.
fn measure_echo(args: &Args, runtimes: &Runtimes, scratch: &std::path::Path) -> anyhow::Result<Option<f64>> {
    if args.echo_seconds == 0 {
        return Ok(None);
    }
    let codes = country::codes(args.participants);
    let pki = DevPki::new(scratch.join("echo-certs"));
    pki.ensure(&["localhost".into(), "127.0.0.1".into()], &codes)?;
    let echo = runtimes.server.block_on(EchoServer::start(&pki))?;
    let config = LoadConfig {
        endpoint: format!("https://{}", echo.addr),
        certs: pki.dir.clone(),
        banks: country::zipf(&codes),
        submission: if args.unary { Submission::Unary } else { Submission::Streams },
        rate: None,
        window: window(args),
        duration: Duration::from_secs(args.echo_seconds),
        warmup: Duration::from_secs(1),
        batch: args.batch,
        progress: false,
        keys: 0,
        key_share: 0.0,
    };
    eprintln!("measuring the echo ceiling (tonic + TLS, no switch) for {} s...", args.echo_seconds);
    let measured = runtimes.client.block_on(async {
        let channels = drive::connect(&config).await?;
        drive::run(config, channels).await
    })?;
    runtimes.server.block_on(echo.stop());
    let per_s = measured.settled as f64 / measured.measured.as_secs_f64();
    eprintln!("echo ceiling: {per_s:.0} messages/s");
    Ok(Some(per_s))
}

/// The switch at --target, or one started here on a scratch directory.
fn switch_under_test(
    args: &Args,
    runtimes: &Runtimes,
    scratch: &std::path::Path,
    transfers_capacity: Option<u64>,
) -> anyhow::Result<UnderTest> {
    if let Some(target) = &args.target {
        let banks = country::zipf(&args.codes);
        return Ok(UnderTest { endpoint: format!("https://{target}"), certs: args.certs.clone(), banks, own: None });
    }
    let codes = country::codes(args.participants);
    let config = own_config(args, scratch.join("switch"), &codes, transfers_capacity.unwrap_or(0));
    let switch = runtimes.server.block_on(server::start(config))?;
    let certs = switch.dev_pki.as_ref().expect("own switch uses the dev PKI").dir.clone();
    Ok(UnderTest { endpoint: switch.endpoint(), certs, banks: country::zipf(&codes), own: Some(switch) })
}

/// ISO 20022 mode (see [`ponte_loadtest::iso`]) against a switch started here.
fn run_iso(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.target.is_none(), "--iso20022 runs its own switch, not with --target");
    let runtimes = Runtimes::new()?;
    let scratch = tempfile::tempdir()?;
    let codes = country::codes(args.participants);
    let mut config = own_config(args, scratch.path().join("switch"), &codes, run_volume(args));
    config.metrics_listen = None;
    config.iso20022_listen = Some(([127, 0, 0, 1], 0).into());
    let switch = runtimes.server.block_on(server::start(config))?;
    let addr = switch.iso20022_addr.expect("the gateway is on");
    let certs = switch.dev_pki.as_ref().expect("own switch uses the dev PKI").dir.clone();
    eprintln!(
        "driving the ISO 20022 gateway at {addr}: {} participants, pacs.008 of {} payments, {} in flight per bank, {} s \
         (+{} s warm-up)",
        codes.len(),
        args.batch,
        args.iso_inflight,
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64()
    );
    let banks = country::zipf(&codes);
    let run = runtimes.client.block_on(ponte_loadtest::iso::run(
        addr,
        &certs,
        &banks,
        args.duration,
        args.warmup,
        args.batch,
        args.iso_inflight,
    ))?;
    runtimes.server.block_on(switch.stop());
    let report = serde_json::json!({
        "mode": "iso20022",
        "target": "own switch (embedded store, fsync group commit), ISO 20022 gateway over HTTPS/mTLS (HTTP/2)",
        "participants": codes.len(),
        "run": run,
        "machine": Machine::here(None),
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    if let (Some(cpu), Some(us)) = (run.cpu, run.switch_cpu_us_per_payment) {
        eprintln!(
            "CPU: this process kept {:.2} cores busy, {:.2} of them the load generator; the switch used {us:.1} µs per \
             settled payment",
            cpu.process_cores, cpu.generator_cores
        );
    }
    eprintln!(
        "settled {} ({:.0}/s), rejected {}, errors {}; document latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         report: {}",
        run.settled,
        run.throughput_per_s,
        run.rejected,
        run.errors,
        run.document_latency_ms.p50,
        run.document_latency_ms.p99,
        run.document_latency_ms.max,
        args.out.display()
    );
    Ok(())
}

/// The configuration of the switch this tool starts.
fn own_config(args: &Args, data_dir: PathBuf, codes: &[ParticipantId], transfers_capacity: u64) -> Config {
    let mut config =
        Config { data_dir, listen: ([127, 0, 0, 1], 0).into(), store: args.store.clone(), ..Config::default() };
    config.engine.payee_timeout_ms = args.payee_timeout_ms;
    config.engine.transfers_capacity = transfers_capacity;
    if transfers_capacity > 0 {
        eprintln!("building the switch's transfer table for {transfers_capacity} transfers...");
    }
    config.runtime.disbursement_per_s = args.envelope_rate;
    config.dev_participants = codes
        .iter()
        .map(|c| DevParticipant {
            code: c.to_string(),
            name: format!("Participant {c}"),
            net_debit_cap: "100000000000.00".into(),
        })
        .collect();
    config
}

/// The soak's switch: this binary, started by [`run_soak`] as a child.
fn serve_child(config: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let config = Config::from_file(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let switch = server::start(config).await?;
        println!("{}{}", soak::SERVING, switch.endpoint());
        std::io::stdout().flush()?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Soak mode (see [`soak`]): the switch as a child process, watched.
fn run_soak(args: &Args, keys: u64) -> anyhow::Result<()> {
    anyhow::ensure!(args.target.is_none(), "--soak runs its own switch, not with --target");
    let scratch = tempfile::tempdir()?;
    let folder = match &args.soak_keep {
        Some(kept) => {
            std::fs::create_dir(kept).map_err(|e| anyhow::anyhow!("--soak-keep {}: {e}", kept.display()))?;
            kept.clone()
        }
        None => scratch.path().to_path_buf(),
    };
    let codes = country::codes(args.participants);
    let data_dir = folder.join("switch");
    let mut config = own_config(args, data_dir.clone(), &codes, args.transfers_capacity.unwrap_or(0));
    config.metrics_listen = None;
    config.engine.id_age_ms_max = args.soak_window.as_millis() as i64;
    config.engine.final_record_ms = args.soak_final_record.as_millis() as i64;
    config.runtime.snapshot_every_ms = args.snapshot_every.as_millis() as u64;
    let config_path = folder.join("soak.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let switch = soak::spawn(&config_path, Duration::from_secs(600))?;
    let pid = switch.child.id();
    let under_test = UnderTest {
        endpoint: switch.endpoint.clone(),
        certs: data_dir.join("certs"),
        banks: country::zipf(&codes),
        own: None,
    };
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if keys > 0 {
        eprintln!("registering {keys} phone keys in the directory...");
        client.block_on(ponte_loadtest::keys::register(
            &under_test.endpoint,
            &under_test.certs,
            &under_test.banks,
            keys,
            !args.quiet,
        ))?;
    }
    eprintln!(
        "soaking {} for {} s (pid {pid}, data in {})",
        under_test.endpoint,
        args.duration.as_secs(),
        data_dir.display()
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = client.spawn(soak::sample(pid, data_dir, stop.clone()));
    let (measured, ..) = client.block_on(drive_load(args, &under_test, keys))?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = client.block_on(sampler)?;
    eprintln!("killing the switch (SIGKILL) and restarting it on the same data directory...");
    let (restarted, restart_ms) = soak::kill_and_restart(switch, &config_path)?;
    drop(restarted);
    let store = args.store.clone().unwrap_or_else(|| "embedded".into());
    let report = soak::SoakReport::new(store, &measured, &samples, restart_ms, &config);
    soak::write(&report, &args.out)
}

/// Registers the run's phone keys; how long it took, in seconds.
fn register_keys(args: &Args, runtimes: &Runtimes, under_test: &UnderTest, keys: u64) -> anyhow::Result<Option<f64>> {
    if keys == 0 {
        return Ok(None);
    }
    let UnderTest { endpoint, certs, banks, .. } = under_test;
    eprintln!("registering {keys} phone keys in the directory...");
    let took = runtimes.client.block_on(ponte_loadtest::keys::register(endpoint, certs, banks, keys, !args.quiet))?;
    eprintln!("{keys} keys registered in {:.1} s ({:.0}/s)", took.as_secs_f64(), keys as f64 / took.as_secs_f64());
    Ok(Some(took.as_secs_f64()))
}

type Driven = (
    drive::Measured,
    Option<ponte_loadtest::envelope::EnvelopeRun>,
    Option<std::collections::BTreeMap<String, report::StreamKind>>,
    Option<report::CpuUse>,
);

/// The measured run: payees online, payers driving, the envelope (if any)
/// beside them, and the window's stream traffic and CPU.
async fn drive_load(args: &Args, under_test: &UnderTest, keys: u64) -> anyhow::Result<Driven> {
    let UnderTest { endpoint, certs, banks, own } = under_test;
    let config = LoadConfig {
        endpoint: endpoint.clone(),
        certs: certs.clone(),
        banks: banks.clone(),
        submission: if args.unary { Submission::Unary } else { Submission::Streams },
        rate: args.rate,
        window: window(args),
        duration: args.duration,
        warmup: args.warmup,
        batch: args.batch,
        progress: !args.quiet,
        keys,
        key_share: args.key_share,
    };
    let payee = SimulatedPayee { reject_rate: args.reject_rate, think_time: Duration::from_millis(args.think_time_ms) };
    let own_stats = own.as_ref().map(|switch| switch.engine.stats_arc());
    let inboxes = open_inboxes(endpoint, certs, banks, &payee).await?;
    let channels = drive::connect(&config).await?;
    let envelope = (args.envelope > 0).then(|| {
        let (endpoint, certs, banks) = (endpoint.clone(), certs.clone(), banks.clone());
        let items = args.envelope;
        tokio::spawn(async move {
            ponte_loadtest::envelope::run(&endpoint, &certs, &banks, items, Duration::from_secs(600)).await
        })
    });
    // What the switch's streams carried and the CPU the run had, over the
    // measured window.
    let window = {
        let (warmup, duration) = (args.warmup, args.duration);
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            let traffic = own_stats.as_ref().map(|stats| report::snapshot(stats));
            let cpu = report::CpuSample::now();
            tokio::time::sleep(duration).await;
            let traffic = own_stats.as_ref().zip(traffic).map(|(stats, before)| {
                report::stream_messages(&before, &report::snapshot(stats), duration.as_secs_f64())
            });
            let cpu = cpu.zip(report::CpuSample::now()).and_then(|(before, after)| before.until(&after));
            (traffic, cpu)
        })
    };
    let measured = drive::run(config, channels).await;
    let (stream_messages, cpu) = match &measured {
        Ok(_) => window.await.map_err(|e| anyhow::anyhow!("window task: {e}"))?,
        // A failed run is reported at once, not after the window.
        Err(_) => {
            window.abort();
            (None, None)
        }
    };
    // The envelope may outlast the retail run; payees stay online for it.
    let envelope = match envelope {
        Some(task) => Some(task.await.map_err(|e| anyhow::anyhow!("envelope task: {e}"))??),
        None => None,
    };
    for inbox in inboxes {
        inbox.stop().await;
    }
    Ok((measured?, envelope, stream_messages, cpu))
}

/// Writes the report and its chart, and prints the summary lines.
fn print_summary(report: &Report, out: &std::path::Path) -> anyhow::Result<()> {
    let svg = report::write(report, out)?;
    let l = &report.latency_ms;
    println!(
        "{:.0} settled/s ({} settled, {} rejected, {} errors); latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        report.throughput_per_s, report.settled, report.rejected, report.errors, l.p50, l.p90, l.p99, l.p999, l.max
    );
    if let (Some(echo), Some(ratio)) = (report.echo_ceiling_per_s, report.ratio_to_echo) {
        println!("echo ceiling {echo:.0} messages/s; switch at {:.1}% of it", ratio * 100.0);
    }
    if let Some(cpu) = report.machine.cpu {
        println!(
            "CPU over the measured window: this process kept {:.2} of {} cores busy ({:.2} the load generator, so {:.1} µs \
             of the rest per settled payment); the hypervisor took {:.1}% of the machine",
            cpu.process_cores,
            report.machine.cores,
            cpu.generator_cores,
            (cpu.process_cores - cpu.generator_cores) * 1e6 / report.throughput_per_s.max(1.0),
            cpu.steal_share * 100.0
        );
        if cpu.steal_share > report::STEAL_WARN_SHARE {
            eprintln!(
                "warning: the hypervisor took {:.1}% of this machine's CPU during the run; its figures understate the machine",
                cpu.steal_share * 100.0
            );
        }
    }
    println!("report: {}  chart: {}", out.display(), svg.display());
    Ok(())
}

fn window(args: &Args) -> usize {
    args.window.unwrap_or(if args.unary { 512 } else { 16_384 })
}

async fn open_inboxes(
    endpoint: &str,
    certs: &std::path::Path,
    banks: &[Bank],
    payee: &SimulatedPayee,
) -> anyhow::Result<Vec<ponte_sdk::InboxHandle>> {
    let mut inboxes = Vec::new();
    for bank in banks {
        let identity = Identity::from_dev_dir(certs, &bank.code.to_string())?;
        let client = Client::connect(endpoint, bank.code, &identity).await?;
        let mut inbox = client.serve_inbox(payee.clone());
        tokio::time::timeout(Duration::from_secs(10), inbox.connected())
            .await
            .map_err(|_| anyhow::anyhow!("inbox of {} did not open", bank.code))?;
        inboxes.push(inbox);
    }
    Ok(inboxes)
}
