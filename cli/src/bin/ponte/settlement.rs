//! `ponte settlement ...` (the operator's cycles and reports) and
//! `ponte reconcile` (a participant's own movements in a cycle).

use crate::{OperatorArgs, ParticipantArgs};
use clap::Subcommand;
use ponte_sdk::{Amount, Identity, OperatorClient};
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

/// Writes this participant's transfers of a cycle, read page by page (a
/// busy cycle is millions of them: never all in memory), with a closing
/// line of totals that match its line in the central bank's report.
pub(crate) async fn reconcile(
    connection: ParticipantArgs,
    cycle: u64,
    format: ReconcileFormat,
    page_size: u32,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let me = connection.participant;
    let client = connection.client().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        ReconcileFormat::Csv => writeln!(out, "end_to_end_id,direction,counterparty,amount,settled_at_ms,kind")?,
        ReconcileFormat::Json => write!(out, "{{\"participant\":\"{me}\",\"cycle\":{cycle},\"transfers\":[")?,
    }
    let (mut sent, mut received) = ((0_u64, Amount::ZERO), (0_u64, Amount::ZERO));
    let mut token = String::new();
    let mut first = true;
    loop {
        let page = client.cycle_transfers_page(cycle, page_size, &token).await?;
        for t in &page.transfers {
            let is_sent = t.payer.participant == me;
            let side = if is_sent { &mut sent } else { &mut received };
            side.0 += 1;
            side.1 = side.1.checked_add(t.amount).ok_or_else(|| anyhow::anyhow!("the cycle's sums overflow"))?;
            let counterparty = if is_sent { t.payee.participant } else { t.payer.participant };
            let kind = if t.original.is_some() { "RETURN" } else { "PAYMENT" };
            let direction = if is_sent { "SENT" } else { "RECEIVED" };
            let at = t.settled_at.map_or_else(String::new, |at| at.to_string());
            match format {
                ReconcileFormat::Csv => {
                    writeln!(out, "{},{direction},{counterparty},{},{at},{kind}", t.id, t.amount)?;
                }
                ReconcileFormat::Json => {
                    let item = serde_json::json!({"end_to_end_id": t.id.to_string(), "direction": direction,
                        "counterparty": counterparty.to_string(), "amount": t.amount.to_string(),
                        "settled_at_ms": at, "kind": kind});
                    write!(out, "{}\n  {item}", if first { "" } else { "," })?;
                }
            }
            first = false;
        }
        match page.next_page_token {
            Some(next) => token = next,
            None => break,
        }
    }
    match format {
        ReconcileFormat::Csv => writeln!(
            out,
            "# cycle {cycle} participant {me} sent_count {} sent_value {} received_count {} received_value {}",
            sent.0, sent.1, received.0, received.1
        )?,
        ReconcileFormat::Json => writeln!(
            out,
            "\n],\"sent_count\":{},\"sent_value\":\"{}\",\"received_count\":{},\"received_value\":\"{}\"}}",
            sent.0, sent.1, received.0, received.1
        )?,
    }
    out.flush()?;
    Ok(())
}
