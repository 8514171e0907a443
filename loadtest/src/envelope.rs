//! A bulk disbursement envelope beside the retail load: one paying agency
//! (the largest participant) pays N beneficiaries at accounts spread over
//! the other participants, through the switch's Disbursements service,
//! while the simulated banks keep paying each other.

use crate::country::Bank;
use ponte_domain::{Account, AccountType, Amount};
use ponte_sdk::disbursement::{Beneficiary, EnvelopeHeader, EnvelopeItem};
use ponte_sdk::{Client, Identity};
use std::path::Path;
use std::time::{Duration, Instant};

/// What the envelope run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvelopeRun {
    pub items: u32,
    /// From the start of the upload until the switch accepted the envelope.
    pub accepted_s: f64,
    /// From the start of the upload until every item was paid or failed.
    pub complete_s: f64,
    pub items_per_s: f64,
    pub paid: u32,
    pub paid_value: String,
    pub failed: u32,
    /// Paid + failed = items, and paid + failed value = the control total.
    pub reconciles: bool,
}

/// Uploads the envelope and follows it until complete (or `timeout`).
pub async fn run(
    endpoint: &str,
    certs: &Path,
    banks: &[Bank],
    items: u32,
    timeout: Duration,
) -> anyhow::Result<EnvelopeRun> {
    anyhow::ensure!(banks.len() >= 2, "an envelope needs an agency and a beneficiary bank");
    let agency = banks[0].code;
    let client = Client::connect(endpoint, agency, &Identity::from_dev_dir(certs, &agency.to_string())?).await?;
    let list: Vec<EnvelopeItem> = (0..items)
        .map(|i| {
            let bank = &banks[1 + (i as usize % (banks.len() - 1))];
            EnvelopeItem {
                disbursement_id: format!("BEN{i:09}"),
                beneficiary: Beneficiary::Account(
                    Account::new(bank.code, "1", &format!("{}", 100_000 + i), AccountType::Payment).expect("valid"),
                ),
                amount: Amount::from_minor(600_00 + i64::from(i % 100)),
                narrative: "cash transfer".into(),
            }
        })
        .collect();
    let total = list.iter().try_fold(Amount::ZERO, |sum, i| sum.checked_add(i.amount)).expect("no overflow");
    let header = EnvelopeHeader {
        agency,
        reference: format!("LOAD-{}", std::process::id()),
        programme: "load test".into(),
        cycle_reference: "load".into(),
        currency: ponte_domain::CURRENCY.into(),
        paying_account: Account::new(agency, "1", "1", AccountType::Checking)?,
        control_count: items,
        control_total: total,
    };
    let started = Instant::now();
    client.submit_envelope(&header, list).await?;
    let accepted_s = started.elapsed().as_secs_f64();
    eprintln!("envelope of {items} items accepted in {accepted_s:.1} s");
    loop {
        let status = client.envelope(&header.reference).await?;
        if status.complete {
            let complete_s = started.elapsed().as_secs_f64();
            let paid_value = Amount::parse_non_negative(&status.paid_value)?;
            let failed_value = Amount::parse_non_negative(&status.failed_value)?;
            let reconciles =
                status.paid_count + status.failed_count == items && paid_value.checked_add(failed_value) == Some(total);
            eprintln!(
                "envelope complete in {complete_s:.1} s: {} paid ({}), {} failed",
                status.paid_count, status.paid_value, status.failed_count
            );
            return Ok(EnvelopeRun {
                items,
                accepted_s,
                complete_s,
                items_per_s: f64::from(items) / complete_s,
                paid: status.paid_count,
                paid_value: status.paid_value,
                failed: status.failed_count,
                reconciles,
            });
        }
        anyhow::ensure!(started.elapsed() < timeout, "envelope not complete after {timeout:?}: {status:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
