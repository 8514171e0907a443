//! `ponte settlement ...` (the operator's cycles and reports) and
//! `ponte reconcile` (a participant's own movements in a cycle).

use crate::{OperatorArgs, ParticipantArgs};
use clap::Subcommand;
use ponte_sdk::{Identity, OperatorClient};
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum SettlementAction {
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
pub(crate) enum ReconcileFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReportKind {
    Json,
    Csv,
    Camt053,
}

pub(crate) async fn settlement(connection: OperatorArgs, action: SettlementAction) -> anyhow::Result<()> {
    let identity = Identity::from_dev_dir(&connection.certs, ponte_switch::net::tls::OPERATOR_NAME)?;
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

pub(crate) async fn reconcile(connection: ParticipantArgs, cycle: u64, format: ReconcileFormat) -> anyhow::Result<()> {
    let me = connection.participant;
    let client = connection.client().await?;
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
                t.settled_at.map_or_else(String::new, |at| at.to_string()),
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
