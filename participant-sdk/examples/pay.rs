//! Pays 25.00 from bank 10000001 to bank 10000002 through a running switch,
//! with bank 10000002's inbox accepting it.
//!
//! Start a switch first (`cargo run --release -- serve`), then:
//! `cargo run -p ponte-sdk --example pay [ENDPOINT] [CERTS_DIR]`
//! (defaults: https://127.0.0.1:7700 and ponte-data/certs).

use ponte_sdk::{
    Account, AccountType, Amount, Client, Decision, Identity, InboxHandler, IncomingPayment, Payment, PaymentOutcome,
};
use std::path::PathBuf;

/// Bank 10000002's core system: accepts every payment to an open account.
struct Core;

impl InboxHandler for Core {
    async fn on_payment(&self, payment: IncomingPayment) -> Decision {
        println!("payee: incoming {} of {} for account {}", payment.id, payment.amount, payment.payee.number());
        Decision::Accept
    }

    async fn on_settled(&self, id: ponte_sdk::EndToEndId, _at_ms: i64) {
        println!("payee: {id} settled, crediting the customer");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or_else(|| "https://127.0.0.1:7700".into());
    let certs = PathBuf::from(args.next().unwrap_or_else(|| "ponte-data/certs".into()));

    let payer_code = "10000001".parse()?;
    let payee_code = "10000002".parse()?;
    let payer = Client::connect(&endpoint, payer_code, &Identity::from_dev_dir(&certs, "10000001")?).await?;
    let payee = Client::connect(&endpoint, payee_code, &Identity::from_dev_dir(&certs, "10000002")?).await?;

    let mut inbox = payee.serve_inbox(Core);
    inbox.connected().await;

    let payment = Payment {
        id: payer.new_payment_id(),
        payer: Account::new(payer_code, "1", "123456", AccountType::Checking)?,
        payee: Account::new(payee_code, "1", "654321", AccountType::Savings)?,
        amount: Amount::parse_positive("25.00")?,
        remittance: "example payment".into(),
    };
    match payer.submit(&payment).await? {
        PaymentOutcome::Settled { at_ms } => println!("payer: {} settled at {at_ms}", payment.id),
        PaymentOutcome::Rejected { reason } => {
            println!("payer: {} rejected: {reason} (retry can help: {})", payment.id, reason.is_transient())
        }
    }
    let status = payer.status(&payment.id).await?;
    println!("payer: status {} amount {}", status.state.as_str(), status.amount);
    // Give the settlement notice a moment to reach the payee before closing.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    inbox.stop().await;
    Ok(())
}
