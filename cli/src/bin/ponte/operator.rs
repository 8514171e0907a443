//! `ponte participant ...`: the operator's administration of participants.

use crate::OperatorArgs;
use clap::Subcommand;
use ponte_domain::{Amount, ParticipantId};
use ponte_sdk::{Identity, OperatorClient, ParticipantStatus};

#[derive(Subcommand)]
pub(crate) enum ParticipantAction {
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

pub(crate) async fn participant(connection: OperatorArgs, action: ParticipantAction) -> anyhow::Result<()> {
    let identity = Identity::from_dev_dir(&connection.certs, ponte_switch::net::tls::OPERATOR_NAME)?;
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
            let pki = ponte_switch::net::tls::DevPki::new(&connection.certs);
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

pub(crate) fn print_participant(p: &ponte_sdk::ParticipantInfo) {
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
