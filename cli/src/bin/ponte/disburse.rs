//! `ponte disburse ...`: a paying agency's bulk disbursement.

use crate::ParticipantArgs;
use crate::settlement::ReconcileFormat;
use clap::Subcommand;
use ponte_domain::Amount;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum DisburseAction {
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

pub(crate) async fn disburse(connection: ParticipantArgs, action: DisburseAction) -> anyhow::Result<()> {
    use ponte_sdk::disbursement::{AccountText, EnvelopeHeader, read_csv};
    let me = connection.participant;
    let client = connection.client().await?;
    match action {
        DisburseAction::Submit { file, reference, count, total, programme, cycle_ref, currency, account, wait } => {
            let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let items = match read_csv(&connection.country, &text) {
                Ok(items) => items,
                Err(problems) => {
                    for problem in &problems {
                        eprintln!("{}: {problem}", file.display());
                    }
                    anyhow::bail!("{} problem(s) in {}; nothing was sent", problems.len(), file.display());
                }
            };
            let paying_account = format!("{me}/{account}").parse::<AccountText>().map_err(anyhow::Error::msg)?.0;
            let header = EnvelopeHeader {
                agency: me,
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

pub(crate) fn print_status(s: &ponte_sdk::disbursement::EnvelopeStatus) {
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
pub(crate) async fn follow(client: &ponte_sdk::Client, reference: &str) -> anyhow::Result<()> {
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
