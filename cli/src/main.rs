//! `ponte`: the switch binary.
//!
//! - `ponte serve`: run the switch (embedded store, mTLS, dev certificates on first start).
//! - `ponte demo`: a simulated country in one process.
//! - `ponte participant ...`: the operator's administration commands.
//! - `ponte disburse ...`: a paying agency's bulk disbursement (CSV in, report out).

use clap::{Args, Parser, Subcommand};

// mimalloc: tonic, HTTP/2 and protobuf make many small, short-lived
// allocations across threads; glibc's malloc spent ~15% of a loaded
// switch's CPU on them (perf, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ponte_domain::{Amount, ParticipantId};
use ponte_sdk::{Identity, OperatorClient, ParticipantStatus};
use ponte_switch::server::{self, Config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ponte", version, about = "Ponte: an instant payments switch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch. With no arguments: the embedded store in ./ponte-data,
    /// development certificates created on first start, listening on 127.0.0.1:7700.
    Serve(ServeArgs),
    /// Start a switch on a temporary directory with simulated banks, run a
    /// burst of payments and print what happened.
    Demo(ponte::demo::DemoArgs),
    /// Print every configuration setting with its default, as TOML.
    Config,
    /// A participant's directory keys: register, look up, list, delete
    /// (the participant's certificate is used).
    Key {
        #[command(flatten)]
        connection: ParticipantArgs,
        #[command(subcommand)]
        action: KeyAction,
    },
    /// A participant's own payments and returns in a settlement cycle, as
    /// CSV or JSON, to reconcile with its line in the cycle report.
    Reconcile {
        #[command(flatten)]
        connection: ParticipantArgs,
        cycle: u64,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReconcileFormat,
    },
    /// Bulk disbursement for a paying agency: submit an envelope from a CSV
    /// file, follow its progress, fetch its report (the agency's certificate
    /// is used).
    Disburse {
        #[command(flatten)]
        connection: ParticipantArgs,
        #[command(subcommand)]
        action: DisburseAction,
    },
    /// Settlement cycles for the central bank (operator certificate required).
    Settlement {
        #[command(flatten)]
        connection: OperatorArgs,
        #[command(subcommand)]
        action: SettlementAction,
    },
    /// Participant administration (operator certificate required).
    Participant {
        #[command(flatten)]
        connection: OperatorArgs,
        #[command(subcommand)]
        action: ParticipantAction,
    },
    /// The development certificate authority's certificates (a production
    /// deployment revokes through its own CA and points `tls.crl` at its list).
    Cert {
        /// Directory of the development CA (ca.pem, ca.key) and the certificates it issued.
        #[arg(long, env = "PONTE_CERTS", default_value = "ponte-data/certs", global = true)]
        certs: PathBuf,
        #[command(subcommand)]
        action: CertAction,
    },
}

#[derive(Subcommand)]
enum CertAction {
    /// Revoke the certificate issued to NAME (a participant code, or
    /// `operator`): it is added to DIR/crl.pem, which a running switch
    /// applies within seconds, closing that holder's open connections.
    Revoke { name: String },
}

#[derive(Args)]
struct ServeArgs {
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
}

#[derive(Args)]
struct OperatorArgs {
    /// The switch's address.
    #[arg(long, env = "PONTE_ENDPOINT", default_value = "https://127.0.0.1:7700", global = true)]
    endpoint: String,
    /// Directory holding ca.pem, operator.pem and operator.key (and ca.key, to issue certificates).
    #[arg(long, env = "PONTE_CERTS", default_value = "ponte-data/certs", global = true)]
    certs: PathBuf,
}

#[derive(Args)]
struct ParticipantArgs {
    /// The participant acting (its CODE.pem/CODE.key are used).
    #[arg(long = "as", global = true, default_value = "10000001")]
    participant: ParticipantId,
    /// The switch's address.
    #[arg(long, env = "PONTE_ENDPOINT", default_value = "https://127.0.0.1:7700", global = true)]
    endpoint: String,
    /// Directory holding ca.pem and the participant's certificate and key.
    #[arg(long, env = "PONTE_CERTS", default_value = "ponte-data/certs", global = true)]
    certs: PathBuf,
}

/// Key types on the command line, by the names in the directory's one name
/// table (`person_id` or `person-id`, `phone`, ...; `cpf` and the wire names
/// work too).
fn key_type_arg(text: &str) -> Result<ponte_sdk::KeyType, String> {
    ponte_sdk::KeyType::from_name(text).ok_or_else(|| {
        let names: Vec<_> = ponte_sdk::KeyType::ALL.iter().map(|kind| kind.name()).collect();
        format!("unknown key type {text:?}; one of {}", names.join(", "))
    })
}

#[derive(Subcommand)]
enum KeyAction {
    /// Register a key for one of the participant's accounts.
    Register {
        #[arg(value_parser = key_type_arg)]
        kind: ponte_sdk::KeyType,
        /// The key (empty for a random key: the directory makes one).
        #[arg(default_value = "")]
        value: String,
        #[arg(long, default_value = "1")]
        branch: String,
        #[arg(long)]
        account: String,
        /// The account owner's national id (CPF for a person, CNPJ for a business).
        #[arg(long)]
        owner_id: String,
        #[arg(long)]
        owner_name: String,
        /// The owner is a business.
        #[arg(long)]
        business: bool,
    },
    /// Look a key up for an end user (rate limited).
    Lookup {
        #[arg(value_parser = key_type_arg)]
        kind: ponte_sdk::KeyType,
        value: String,
        /// The national id of the end user asking (a person's CPF by default).
        #[arg(long)]
        end_user: String,
        #[arg(long)]
        end_user_business: bool,
    },
    /// The participant's keys and the directory's reconciliation digest.
    List,
    /// Delete one of the participant's keys.
    Delete {
        #[arg(value_parser = key_type_arg)]
        kind: ponte_sdk::KeyType,
        value: String,
    },
}

#[derive(Subcommand)]
enum SettlementAction {
    /// List settlement cycles.
    List,
    /// Close the open cycle now.
    Close,
    /// Print (or write) a cycle's report.
    Report {
        id: u64,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportKind,
        /// Write to this file instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Confirm a closed cycle was posted in the RTGS (frees the participants' headroom).
    Confirm { id: u64 },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReconcileFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportKind {
    Json,
    Csv,
    Camt053,
}

#[derive(Subcommand)]
enum ParticipantAction {
    /// List participants with their limits and positions.
    List,
    /// Admit a participant; with the development CA at hand, also issue its certificate.
    Add {
        code: ParticipantId,
        name: String,
        /// Net debit cap, e.g. 100000.00
        #[arg(long)]
        net_debit_cap: String,
    },
    /// Change a participant's net debit cap.
    Limit { code: ParticipantId, net_debit_cap: String },
    /// Stop a participant from sending or receiving payments.
    Suspend { code: ParticipantId },
    /// Let a suspended participant transact again.
    Activate { code: ParticipantId },
    /// Set a participant's directory lookup category (A, the largest, to H).
    Category { code: ParticipantId, category: char },
    /// Make a participant prefunded (it sends what it deposited or received).
    Prefund { code: ParticipantId },
    /// Put a participant back on its net debit cap.
    NetDebitCap { code: ParticipantId },
    /// Record money deposited into a prefunded participant's balance.
    FundsIn { code: ParticipantId, amount: String },
    /// Record money withdrawn from a prefunded participant's balance.
    FundsOut { code: ParticipantId, amount: String },
}

#[derive(Subcommand)]
enum DisburseAction {
    /// Submit an envelope from a CSV file (columns disbursement_id,
    /// beneficiary_type, beneficiary, amount, narrative). The control count
    /// and total you give must match the file; nothing is paid otherwise.
    Submit {
        file: PathBuf,
        /// Your reference of this envelope (unique for your agency).
        #[arg(long)]
        reference: String,
        /// Number of items in the file.
        #[arg(long)]
        count: u32,
        /// Sum of the items' amounts, e.g. 1500000.00.
        #[arg(long)]
        total: String,
        #[arg(long, default_value = "")]
        programme: String,
        /// Your payment cycle, e.g. 2026-12.
        #[arg(long, default_value = "")]
        cycle_ref: String,
        /// ISO 4217 code of the amounts (the switch's currency).
        #[arg(long, default_value = ponte_domain::CURRENCY)]
        currency: String,
        /// The paying account, BRANCH/NUMBER at your participant [default: 1/1].
        #[arg(long, default_value = "1/1")]
        account: String,
        /// Follow the progress until every item is paid or failed.
        #[arg(long)]
        wait: bool,
    },
    /// An envelope's progress; --wait follows it with a progress bar.
    Status {
        reference: String,
        #[arg(long)]
        wait: bool,
    },
    /// Every item's outcome and the envelope's totals.
    Report {
        reference: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReconcileFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Demo(args) => ponte::demo::run(args).await,
            Command::Config => {
                print!("{}", toml::to_string_pretty(&Config::default())?);
                Ok(())
            }
            Command::Participant { connection, action } => participant(connection, action).await,
            Command::Key { connection, action } => key(connection, action).await,
            Command::Disburse { connection, action } => disburse(connection, action).await,
            Command::Settlement { connection, action } => settlement(connection, action).await,
            Command::Reconcile { connection, cycle, format } => reconcile(connection, cycle, format).await,
            Command::Cert { certs, action: CertAction::Revoke { name } } => {
                let pki = ponte_switch::tls::DevPki::new(&certs);
                if !pki.identity(&name).cert.exists() {
                    anyhow::bail!("no certificate for {name:?} in {}", certs.display());
                }
                let count = pki.revoke(&name)?;
                println!(
                    "revoked the certificate of {name}; {} now lists {count} revoked certificate(s)",
                    pki.crl().display()
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
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
    let switch = server::start(config.clone()).await?;
    println!("Ponte switch serving on {}", switch.endpoint());
    println!("  data directory: {}", switch.data_dir.display());
    println!("  journal store: {}", config.store.as_deref().unwrap_or("embedded (DATA_DIR/journal.redb)"));
    println!("  journal records replayed: {}", switch.replayed_records);
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
    println!("Stop with Ctrl-C.");
    let mut failed = switch.failed();
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal?,
        _ = failed.wait_for(|failed| *failed) => {
            // Nothing more can be made durable (disk error, or another node
            // fenced this one): stop serving rather than answer from a
            // ledger that can no longer be journaled.
            switch.stop().await;
            anyhow::bail!("the journal store failed or this node was fenced by another writer (see the log above); exiting");
        }
    }
    println!("stopping...");
    switch.stop().await;
    Ok(())
}

async fn participant(connection: OperatorArgs, action: ParticipantAction) -> anyhow::Result<()> {
    let identity = Identity::from_dev_dir(&connection.certs, ponte_switch::tls::OPERATOR_NAME)?;
    let client = OperatorClient::connect(&connection.endpoint, &identity).await?;
    let cap = |text: &str| Amount::parse_non_negative(text).map_err(|e| anyhow::anyhow!("net debit cap {text:?}: {e}"));
    let shown = match action {
        ParticipantAction::List => {
            let (all, sum) = client.participants().await?;
            println!(
                "{:<10} {:<24} {:<10} {:>18} {:>18} {:>18} {:>18} online",
                "code", "name", "status", "net debit cap", "position", "reserved", "available"
            );
            for p in &all {
                print_participant(p);
            }
            println!("sum of positions: {sum}");
            return Ok(());
        }
        ParticipantAction::Add { code, name, net_debit_cap } => {
            let info = client.register_participant(code, &name, cap(&net_debit_cap)?).await?;
            let pki = ponte_switch::tls::DevPki::new(&connection.certs);
            if connection.certs.join("ca.key").exists() && !pki.identity(&code.to_string()).cert.exists() {
                let files = pki.issue(&code.to_string(), Vec::new(), rcgen::ExtendedKeyUsagePurpose::ClientAuth)?;
                println!("issued certificate {} and key {}", files.cert.display(), files.key.display());
            }
            info
        }
        ParticipantAction::Limit { code, net_debit_cap } => client.set_limit(code, cap(&net_debit_cap)?).await?,
        ParticipantAction::Suspend { code } => client.set_status(code, ParticipantStatus::Suspended).await?,
        ParticipantAction::Activate { code } => client.set_status(code, ParticipantStatus::Active).await?,
        ParticipantAction::Category { code, category } => client.set_lookup_category(code, category).await?,
        ParticipantAction::Prefund { code } => client.set_prefunded(code, true).await?,
        ParticipantAction::NetDebitCap { code } => client.set_prefunded(code, false).await?,
        ParticipantAction::FundsIn { code, amount } => client.move_funds(code, cap(&amount)?, false).await?,
        ParticipantAction::FundsOut { code, amount } => client.move_funds(code, cap(&amount)?, true).await?,
    };
    print_participant(&shown);
    Ok(())
}

async fn reconcile(connection: ParticipantArgs, cycle: u64, format: ReconcileFormat) -> anyhow::Result<()> {
    let me = connection.participant;
    let identity = Identity::from_dev_dir(&connection.certs, &me.to_string())?;
    let client = ponte_sdk::Client::connect(&connection.endpoint, me, &identity).await?;
    let transfers = client.cycle_transfers(cycle).await?;
    let rows: Vec<(String, &'static str, String, String, String, String)> = transfers
        .iter()
        .map(|t| {
            let sent = t.payer.participant == me;
            let counterparty = if sent { t.payee.participant } else { t.payer.participant };
            let kind = if t.original.is_some() { "RETURN" } else { "PAYMENT" };
            (
                t.id.to_string(),
                if sent { "SENT" } else { "RECEIVED" },
                counterparty.to_string(),
                t.amount.to_string(),
                t.settled_at_ms.map_or_else(String::new, |at| at.to_string()),
                kind.to_owned(),
            )
        })
        .collect();
    match format {
        ReconcileFormat::Csv => {
            println!("end_to_end_id,direction,counterparty,amount,settled_at_ms,kind");
            for (id, direction, counterparty, amount, at, kind) in &rows {
                println!("{id},{direction},{counterparty},{amount},{at},{kind}");
            }
        }
        ReconcileFormat::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|(id, direction, counterparty, amount, at, kind)| {
                    serde_json::json!({"end_to_end_id": id, "direction": direction, "counterparty": counterparty,
                        "amount": amount, "settled_at_ms": at, "kind": kind})
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"participant": me.to_string(), "cycle": cycle, "transfers": items})
                )?
            );
        }
    }
    Ok(())
}

async fn settlement(connection: OperatorArgs, action: SettlementAction) -> anyhow::Result<()> {
    let identity = Identity::from_dev_dir(&connection.certs, ponte_switch::tls::OPERATOR_NAME)?;
    let client = OperatorClient::connect(&connection.endpoint, &identity).await?;
    let show = |c: &ponte_sdk::CycleInfo| {
        println!(
            "cycle {:>6}  {:<8} opened {}  closed {}  settled {}",
            c.id,
            c.status.as_str(),
            c.opened_at_ms,
            c.closed_at_ms.map_or("-".into(), |t| t.to_string()),
            c.settled_at_ms.map_or("-".into(), |t| t.to_string())
        )
    };
    match action {
        SettlementAction::List => client.cycles().await?.iter().for_each(show),
        SettlementAction::Close => show(&client.close_cycle().await?),
        SettlementAction::Confirm { id } => show(&client.confirm_cycle(id).await?),
        SettlementAction::Report { id, format, out } => {
            let format = match format {
                ReportKind::Json => ponte_sdk::ReportFormat::Json,
                ReportKind::Csv => ponte_sdk::ReportFormat::Csv,
                ReportKind::Camt053 => ponte_sdk::ReportFormat::Camt053,
            };
            let (digest, content) = client.cycle_report(id, format).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, content)?;
                    println!("cycle {id} report written to {} (digest sha256 {digest})", path.display());
                }
                None => print!("{content}"),
            }
        }
    }
    Ok(())
}

async fn key(connection: ParticipantArgs, action: KeyAction) -> anyhow::Result<()> {
    use ponte_directory::keys::{Brazil, parse_existing};
    use ponte_sdk::directory::EndUser;
    use ponte_sdk::{Account, AccountType, Client, Owner, OwnerKind};
    let me = connection.participant;
    let identity = Identity::from_dev_dir(&connection.certs, &me.to_string())?;
    let client = Client::connect(&connection.endpoint, me, &identity).await?;
    let kind_of = |business: bool| if business { OwnerKind::Business } else { OwnerKind::Person };
    match action {
        KeyAction::Register { kind, value, branch, account, owner_id, owner_name, business } => {
            let account = Account::new(me, &branch, &account, AccountType::Checking)?;
            let owner = Owner { kind: kind_of(business), id: owner_id, name: owner_name };
            let entry = client.register_key(kind, &value, &account, &owner).await?;
            println!("registered {} {} -> {:?}", entry.key.kind().as_str(), entry.key.value(), entry.account);
        }
        KeyAction::Lookup { kind, value, end_user, end_user_business } => {
            let key = parse_existing(&Brazil, kind, &value)?;
            let user = EndUser { kind: kind_of(end_user_business), id: end_user };
            let found = client.lookup_key(&key, &user).await?;
            println!(
                "{} -> {:?}, owner {} ({})",
                key.kind().as_str(),
                found.account,
                found.owner_name_masked,
                found.owner_id_masked
            );
        }
        KeyAction::List => {
            let (entries, digest) = client.list_keys().await?;
            for entry in &entries {
                println!("{:<12} {:<40} {:?}", entry.key.kind().as_str(), entry.key.value(), entry.account);
            }
            println!("{} keys, digest {digest:016x}", entries.len());
        }
        KeyAction::Delete { kind, value } => {
            let key = parse_existing(&Brazil, kind, &value)?;
            client.delete_key(&key).await?;
            println!("deleted");
        }
    }
    Ok(())
}

fn print_participant(p: &ponte_sdk::ParticipantInfo) {
    println!(
        "{:<10} {:<24} {:<10} {:>18} {:>18} {:>18} {:>18} {}",
        p.code.to_string(),
        p.name,
        format!("{:?}", p.status).to_uppercase(),
        p.net_debit_cap.to_string(),
        p.position.to_string(),
        p.reserved.to_string(),
        p.available.to_string(),
        if p.online { "yes" } else { "no" }
    );
}

async fn disburse(connection: ParticipantArgs, action: DisburseAction) -> anyhow::Result<()> {
    use ponte_sdk::Client;
    use ponte_sdk::disbursement::{AccountText, Header, read_csv};
    let me = connection.participant;
    let identity = Identity::from_dev_dir(&connection.certs, &me.to_string())?;
    let client = Client::connect(&connection.endpoint, me, &identity).await?;
    match action {
        DisburseAction::Submit { file, reference, count, total, programme, cycle_ref, currency, account, wait } => {
            let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let items = match read_csv(&text) {
                Ok(items) => items,
                Err(problems) => {
                    for problem in &problems {
                        eprintln!("{}: {problem}", file.display());
                    }
                    anyhow::bail!("{} problem(s) in {}; nothing was sent", problems.len(), file.display());
                }
            };
            let paying_account = format!("{me}/{account}").parse::<AccountText>().map_err(anyhow::Error::msg)?.0;
            let header = Header {
                reference: reference.clone(),
                programme,
                cycle_reference: cycle_ref,
                currency,
                paying_account,
                control_count: count,
                control_total: Amount::parse_positive(&total).map_err(|e| anyhow::anyhow!("--total: {e}"))?,
            };
            eprintln!("sending {} items...", items.len());
            let status = client.submit_envelope(&header, items).await?;
            println!(
                "envelope {reference} accepted: {} items, {} {} (digest {})",
                status.received, status.control_total, status.currency, status.digest
            );
            if wait {
                follow(&client, &reference).await?;
            }
        }
        DisburseAction::Status { reference, wait } => {
            if wait {
                follow(&client, &reference).await?;
            } else {
                print_status(&client.envelope(&reference).await?);
            }
        }
        DisburseAction::Report { reference, format, out } => {
            let report = client.envelope_report(&reference).await?;
            let text = match format {
                ReconcileFormat::Csv => report.to_csv(),
                ReconcileFormat::Json => report.to_json(),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    eprintln!("{} items written to {}", report.items.len(), path.display());
                }
                None => print!("{text}"),
            }
            print_status(&report.envelope);
        }
    }
    Ok(())
}

fn print_status(s: &ponte_sdk::disbursement::EnvelopeStatus) {
    let state = if s.complete {
        "complete"
    } else if s.sealed {
        "paying"
    } else {
        "receiving"
    };
    eprintln!(
        "{} ({state}): {}/{} done; paid {} for {}, failed {} for {}, {} in progress; control total {}",
        s.reference,
        s.done(),
        s.control_count,
        s.paid_count,
        s.paid_value,
        s.failed_count,
        s.failed_value,
        s.in_progress,
        s.control_total
    );
}

/// Redraws a progress bar every half second until the envelope is complete.
async fn follow(client: &ponte_sdk::Client, reference: &str) -> anyhow::Result<()> {
    use std::io::Write;
    const WIDTH: u32 = 40;
    loop {
        let s = client.envelope(reference).await?;
        let total = s.control_count.max(1);
        let filled = (u64::from(s.done()) * u64::from(WIDTH) / u64::from(total)) as usize;
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH as usize - filled));
        eprint!(
            "\r[{bar}] {:>3}% {}/{} paid {} ({}) failed {}   ",
            u64::from(s.done()) * 100 / u64::from(total),
            s.done(),
            s.control_count,
            s.paid_count,
            s.paid_value,
            s.failed_count
        );
        let _ = std::io::stderr().flush();
        if s.complete {
            eprintln!();
            print_status(&s);
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
