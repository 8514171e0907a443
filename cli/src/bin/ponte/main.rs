//! `ponte`: the switch binary.
//!
//! - `ponte serve`: run the switch (embedded store, mTLS, dev certificates on first start).
//! - `ponte demo`: a simulated country in one process.
//! - `ponte participant ...`: the operator's administration commands.
//! - `ponte disburse ...`: a paying agency's bulk disbursement (CSV in, report out).

mod disburse;
mod keys;
mod operator;
mod serve;
mod settlement;

use clap::{Args, Parser, Subcommand};

// mimalloc: tonic, HTTP/2 and protobuf make many small, short-lived
// allocations across threads; glibc's malloc spent ~15% of a loaded
// switch's CPU on them (perf, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ponte_domain::ParticipantId;
use ponte_switch::server::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ponte", version = ponte_switch::metrics::LONG_VERSION, about = "Ponte: an instant payments switch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch. With no arguments: the embedded store in ./ponte-data,
    /// development certificates created on first start, listening on 127.0.0.1:7700.
    Serve(serve::ServeArgs),
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
        action: keys::KeyAction,
    },
    /// A participant's own payments and returns in a settlement cycle, as
    /// CSV or JSON, to reconcile with its line in the cycle report.
    Reconcile {
        #[command(flatten)]
        connection: ParticipantArgs,
        cycle: u64,
        #[arg(long, value_enum, default_value = "csv")]
        format: settlement::ReconcileFormat,
        /// Transfers per page asked of the switch (at most 10,000).
        #[arg(long, default_value_t = ponte_sdk::CYCLE_TRANSFERS_PAGE_MAX)]
        page_size: u32,
    },
    /// Bulk disbursement for a paying agency: submit an envelope from a CSV
    /// file, follow its progress, fetch its report (the agency's certificate
    /// is used).
    Disburse {
        #[command(flatten)]
        connection: ParticipantArgs,
        #[command(subcommand)]
        action: disburse::DisburseAction,
    },
    /// Settlement cycles for the central bank (operator certificate required).
    Settlement {
        #[command(flatten)]
        connection: OperatorArgs,
        #[command(subcommand)]
        action: settlement::SettlementAction,
    },
    /// Participant administration (operator certificate required).
    Participant {
        #[command(flatten)]
        connection: OperatorArgs,
        #[command(subcommand)]
        action: operator::ParticipantAction,
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
pub(crate) struct OperatorArgs {
    /// The switch's address.
    #[arg(long, env = "PONTE_ENDPOINT", default_value = "https://127.0.0.1:7700", global = true)]
    pub(crate) endpoint: String,
    /// Directory holding ca.pem, operator.pem and operator.key (and ca.key, to issue certificates).
    #[arg(long, env = "PONTE_CERTS", default_value = "ponte-data/certs", global = true)]
    pub(crate) certs: PathBuf,
}

#[derive(Args)]
pub(crate) struct ParticipantArgs {
    /// The participant acting (its CODE.pem/CODE.key are used).
    #[arg(long = "as", global = true, default_value = "10000001")]
    pub(crate) participant: ParticipantId,
    /// The switch's address.
    #[arg(long, env = "PONTE_ENDPOINT", default_value = "https://127.0.0.1:7700", global = true)]
    pub(crate) endpoint: String,
    /// Directory holding ca.pem and the participant's certificate and key.
    #[arg(long, env = "PONTE_CERTS", default_value = "ponte-data/certs", global = true)]
    pub(crate) certs: PathBuf,
    /// The switch's country (its `[engine] country`): keys and CSV files
    /// are read to its rules.
    #[arg(long, env = "PONTE_COUNTRY", default_value = "BR", global = true)]
    pub(crate) country: ponte_sdk::Country,
}

impl ParticipantArgs {
    /// Connects to the switch as the acting participant.
    pub(crate) async fn client(&self) -> anyhow::Result<ponte_sdk::Client> {
        let identity = ponte_sdk::Identity::from_dev_dir(&self.certs, &self.participant.to_string())?;
        let client = ponte_sdk::Client::connect(&self.endpoint, self.participant, &identity).await?;
        Ok(client.with_country(self.country))
    }
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
            Command::Serve(args) => serve::serve(args).await,
            Command::Demo(args) => ponte::demo::run(args).await,
            Command::Config => {
                print!("{}", toml::to_string_pretty(&Config::default())?);
                Ok(())
            }
            Command::Participant { connection, action } => operator::participant(connection, action).await,
            Command::Key { connection, action } => keys::key(connection, action).await,
            Command::Disburse { connection, action } => disburse::disburse(connection, action).await,
            Command::Settlement { connection, action } => settlement::settlement(connection, action).await,
            Command::Reconcile { connection, cycle, format, page_size } => {
                settlement::reconcile(connection, cycle, format, page_size).await
            }
            Command::Cert { certs, action: CertAction::Revoke { name } } => {
                let pki = ponte_switch::net::tls::DevPki::new(&certs);
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
