//! A bank's inbox that stays connected until Ctrl-C: accepts every incoming
//! payment except to account 99 (closed, AC04), and prints each settlement.
//! Useful to watch payments and disbursements arrive at a running switch.
//!
//! `cargo run -p ponte-sdk --example bank [PARTICIPANT] [ENDPOINT] [CERTS_DIR]`
//! (defaults: 10000002, https://127.0.0.1:7700, ponte-data/certs).

use ponte_sdk::{Client, Decision, Identity, InboxHandler, IncomingPayment, ReasonCode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

struct Core {
    settled: AtomicU64,
}

impl InboxHandler for Core {
    async fn on_payment(&self, payment: IncomingPayment) -> Decision {
        if payment.payee.number() == "99" {
            println!("{}: {} for account 99: closed, rejecting", payment.id, payment.amount);
            return Decision::Reject(ReasonCode::ClosedAccount);
        }
        Decision::Accept
    }

    async fn on_settled(&self, id: ponte_sdk::EndToEndId, _at_ms: i64) {
        let n = self.settled.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() || n.is_multiple_of(10_000) {
            println!("{n} payments settled (latest {id}); crediting customers");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let code = args.next().unwrap_or_else(|| "10000002".into());
    let endpoint = args.next().unwrap_or_else(|| "https://127.0.0.1:7700".into());
    let certs = PathBuf::from(args.next().unwrap_or_else(|| "ponte-data/certs".into()));
    let client = Client::connect(&endpoint, code.parse()?, &Identity::from_dev_dir(&certs, &code)?).await?;
    let mut inbox = client.serve_inbox(Core { settled: AtomicU64::new(0) });
    inbox.connected().await;
    println!("bank {code}: inbox open on {endpoint}; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    inbox.stop().await;
    Ok(())
}
