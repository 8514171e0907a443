//! `ponte demo`: a small country in one process.
//!
//! Starts a real switch (embedded journal with fsync, mTLS on loopback) on a
//! temporary directory, connects simulated banks through the participant
//! SDK, runs a burst of payments over submit streams and prints what
//! happened. Rejections happen for the reasons they happen in real life:
//! a small cooperative runs out of liquidity, a wallet's core system is
//! sometimes too slow, one bank is offline, some payee accounts are closed
//! or blocked.

use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId, ReasonCode};
use ponte_sdk::{
    Client, Decision, Identity, InboxHandler, IncomingPayment, OperatorClient, Payment, PaymentOutcome, Return,
};
use ponte_switch::server::{self, Config, DevParticipant};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many payments the burst sends.
    #[arg(long, default_value_t = 20_000)]
    pub payments: u64,
    /// How long payees have to answer, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub payee_timeout_ms: i64,
    /// Write the settlement cycle's reports (JSON, CSV, camt.053 XML) here.
    #[arg(long)]
    pub report_dir: Option<std::path::PathBuf>,
}

struct Bank {
    code: u32,
    name: &'static str,
    cap: &'static str,
    /// Share of the payments it sends.
    sends: u32,
    /// Share of the payments it receives.
    receives: u32,
    /// Opens an inbox (an offline bank does not).
    online: bool,
    /// Its core system answers after the deadline once in this many payments.
    slow_every: Option<u64>,
}

const BANKS: &[Bank] = &[
    Bank {
        code: 10000001,
        name: "Banco Atlântico",
        cap: "5000000.00",
        sends: 40,
        receives: 40,
        online: true,
        slow_every: None,
    },
    Bank {
        code: 10000002,
        name: "Caixa Serra",
        cap: "5000000.00",
        sends: 35,
        receives: 35,
        online: true,
        slow_every: None,
    },
    Bank {
        code: 10000003,
        name: "Carteira Rio",
        cap: "1000000.00",
        sends: 20,
        receives: 18,
        online: true,
        slow_every: Some(400),
    },
    Bank {
        code: 10000004,
        name: "Banco Pampa",
        cap: "1000000.00",
        sends: 0,
        receives: 2,
        online: false,
        slow_every: None,
    },
    Bank {
        code: 10000005,
        name: "Cooperativa Sol",
        cap: "1500.00",
        sends: 5,
        receives: 5,
        online: true,
        slow_every: None,
    },
];

fn pid(code: u32) -> ParticipantId {
    ParticipantId::new(code).expect("demo codes are 8 digits")
}

/// A simulated bank's core system answering its inbox.
struct DemoPayee {
    slow_every: Option<u64>,
    seen: AtomicU64,
    slow_ms: u64,
}

impl InboxHandler for DemoPayee {
    async fn on_payment(&self, payment: IncomingPayment) -> Decision {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if self.slow_every.is_some_and(|every| n.is_multiple_of(every)) {
            tokio::time::sleep(Duration::from_millis(self.slow_ms)).await;
        }
        let number: u64 = payment.payee.number().parse().unwrap_or(0);
        if number.is_multiple_of(97) {
            Decision::Reject(ReasonCode::ClosedAccount)
        } else if number.is_multiple_of(89) {
            Decision::Reject(ReasonCode::BlockedAccount)
        } else {
            Decision::Accept
        }
    }
}

type Tally = Arc<Mutex<BTreeMap<String, u64>>>;

fn label(outcome: &Result<PaymentOutcome, ponte_sdk::Error>) -> String {
    match outcome {
        Ok(PaymentOutcome::Settled { .. }) => "SETTLED".into(),
        Ok(PaymentOutcome::Rejected { reason }) => {
            format!(
                "{} {}{}",
                reason.code(),
                reason.description(),
                if reason.is_transient() { " (transient)" } else { "" }
            )
        }
        Err(error) => format!("error: {error}"),
    }
}

fn pick(rng: &mut impl Rng, weights: impl Iterator<Item = (u32, u32)> + Clone) -> u32 {
    let total: u32 = weights.clone().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (code, weight) in weights {
        if roll < weight {
            return code;
        }
        roll -= weight;
    }
    unreachable!("roll is below the total")
}

fn random_payment(rng: &mut impl Rng, payer: u32, now_ms: i64) -> Payment {
    let payee = pick(rng, BANKS.iter().filter(|b| b.code != payer).map(|b| (b.code, b.receives)));
    let suffix: [u8; 11] = std::array::from_fn(|_| b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"[rng.random_range(0..34)]);
    Payment {
        id: EndToEndId::from_parts(IdKind::Payment, pid(payer), now_ms, &suffix),
        payer: Account::new(
            pid(payer),
            "1",
            &rng.random_range(100_000..999_999_u32).to_string(),
            AccountType::Checking,
        )
        .expect("valid account"),
        payee: Account::new(
            pid(payee),
            "1",
            &rng.random_range(100_000..999_999_u32).to_string(),
            AccountType::Checking,
        )
        .expect("valid account"),
        amount: Amount::from_minor(rng.random_range(1_00..300_00)),
        remittance: "demo".into(),
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.payments > 0, "--payments must be at least 1");
    anyhow::ensure!(args.payee_timeout_ms > 0, "--payee-timeout-ms must be positive");
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        metrics_listen: None,
        ..Config::default()
    };
    config.engine.payee_timeout_ms = args.payee_timeout_ms;
    // The demo's customers, ids and phone numbers are Brazilian.
    config.engine.country = ponte_sdk::Country::from_code("BR")?;
    config.dev_participants = BANKS
        .iter()
        .map(|b| DevParticipant { code: b.code.to_string(), name: b.name.into(), net_debit_cap: b.cap.into() })
        .collect();
    let switch = server::start(config).await?;
    let endpoint = switch.endpoint();
    let certs = switch.dev_pki.as_ref().expect("the demo uses development certificates").dir.clone();
    println!(
        "Ponte demo: {} participants, {} payments over mTLS, payee deadline {} ms",
        BANKS.len(),
        args.payments,
        args.payee_timeout_ms
    );
    println!("  switch on {endpoint}, journal in {}", dir.path().display());

    let (clients, inboxes) = connect_banks(&endpoint, &certs, &args).await?;
    let sample = run_burst(&clients, &args).await?;
    pay_by_key(&clients).await?;
    if let Some(payment) = sample {
        idempotency_and_returns(&clients, payment).await?;
    }
    let operator =
        OperatorClient::connect(&endpoint, &Identity::from_dev_dir(&certs, ponte_switch::net::tls::OPERATOR_NAME)?)
            .await?;
    show_positions(&operator).await?;
    settle_cycle(&operator, &args).await?;

    for inbox in inboxes {
        inbox.stop().await;
    }
    drop(clients);
    switch.stop().await;
    Ok(())
}

/// Every bank connects; the online ones open their inbox.
async fn connect_banks(
    endpoint: &str,
    certs: &std::path::Path,
    args: &DemoArgs,
) -> anyhow::Result<(BTreeMap<u32, Client>, Vec<ponte_sdk::InboxHandle>)> {
    let mut clients = BTreeMap::new();
    let mut inboxes = Vec::new();
    for bank in BANKS {
        let identity = Identity::from_dev_dir(certs, &bank.code.to_string())?;
        let client = Client::connect(endpoint, pid(bank.code), &identity).await?;
        if bank.online {
            let payee = DemoPayee {
                slow_every: bank.slow_every,
                seen: AtomicU64::new(0),
                slow_ms: (args.payee_timeout_ms as u64) * 3 / 2,
            };
            let mut inbox = client.serve_inbox(payee);
            inbox.connected().await;
            inboxes.push(inbox);
        }
        clients.insert(bank.code, client);
    }

    Ok((clients, inboxes))
}

/// The burst: every sending bank streams its share. Returns a settled
/// payment to show idempotency and returns with.
async fn run_burst(clients: &BTreeMap<u32, Client>, args: &DemoArgs) -> anyhow::Result<Option<Payment>> {
    let tally: Tally = Arc::default();
    let settled_sample: Arc<Mutex<Option<Payment>>> = Arc::default();
    let started = Instant::now();
    let total_sends: u32 = BANKS.iter().map(|b| b.sends).sum();
    let mut tasks = Vec::new();
    for bank in BANKS.iter().filter(|b| b.sends > 0) {
        let count = args.payments * u64::from(bank.sends) / u64::from(total_sends);
        let client = clients[&bank.code].clone();
        let tally = tally.clone();
        let sample = settled_sample.clone();
        let code = bank.code;
        tasks.push(tokio::spawn(async move { burst(client, code, count, tally, sample).await }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let outcomes: u64 = tally.lock().expect("tally").values().sum();

    println!("\nOutcomes");
    for (label, count) in tally.lock().expect("tally").iter() {
        println!("  {label:<72} {count:>8}");
    }
    println!(
        "\n{} payments reached a final outcome in {:.2} s: {:.0} payments/s (each durable before it was answered)",
        outcomes,
        elapsed.as_secs_f64(),
        outcomes as f64 / elapsed.as_secs_f64()
    );

    let sample = settled_sample.lock().expect("sample").clone();
    Ok(sample)
}

/// The same payment again, its id reused with other content, and returns.
async fn idempotency_and_returns(clients: &BTreeMap<u32, Client>, payment: Payment) -> anyhow::Result<()> {
    let payer = &clients[&payment.payer.participant.code()];
    let again = payer.submit(&payment).await?;
    println!("\nThe same payment {} submitted again: {}", payment.id, label(&Ok(again)));
    let mut modified = payment.clone();
    modified.amount = modified.amount.checked_add(Amount::from_minor(1)).expect("small amount");
    println!("Its end-to-end id reused with another amount: {}", label(&Ok(payer.submit(&modified).await?)));
    let payee = &clients[&payment.payee.participant.code()];
    let half = Amount::from_minor(payment.amount.minor() / 2);
    let first = Return {
        id: payee.new_return_id(),
        original: payment.id,
        amount: half,
        reason: ReasonCode::RefundRequested,
        remittance: "refund".into(),
    };
    println!("The payee returns {half} of {}: {}", payment.amount, label(&Ok(payee.return_payment(&first).await?)));
    let too_much = Return { id: payee.new_return_id(), amount: payment.amount, ..first };
    println!("...then tries to return {} more: {}", payment.amount, label(&Ok(payee.return_payment(&too_much).await?)));
    let status = payer.status(&payment.id).await?;
    println!("Status seen by the payer: {} with {} returned", status.state.as_str(), status.returned);
    Ok(())
}

/// The operator's view of the positions: they sum to zero.
async fn show_positions(operator: &OperatorClient) -> anyhow::Result<()> {
    let (participants, sum) = operator.participants().await?;
    println!("\nPositions (settled credits minus debits)");
    for p in &participants {
        println!(
            "  {} {:<18} {:>16}   cap {:>14}",
            p.code,
            p.name,
            p.position.to_string(),
            p.net_debit_cap.to_string()
        );
    }
    println!("  sum of positions: {sum}");
    anyhow::ensure!(sum == Amount::ZERO, "positions do not net to zero");

    Ok(())
}

/// The central bank closes the cycle, gets its report and confirms it.
async fn settle_cycle(operator: &OperatorClient, args: &DemoArgs) -> anyhow::Result<()> {
    let closed = operator.close_cycle().await?;
    let (digest, json) = operator.cycle_report(closed.id, ponte_sdk::ReportFormat::Json).await?;
    let report: serde_json::Value = serde_json::from_str(&json)?;
    println!(
        "\nSettlement cycle {} closed: {} movements, gross {}",
        closed.id,
        report["movements"],
        report["gross_value"].as_str().unwrap_or_default()
    );
    let mut net_sum = Amount::ZERO;
    for line in report["participants"].as_array().into_iter().flatten() {
        let net = Amount::parse_signed(line["net_position"].as_str().unwrap_or_default())?;
        net_sum = net_sum.checked_add(net).ok_or_else(|| anyhow::anyhow!("net positions overflow"))?;
        println!("  {} net position {:>16}", line["participant"].as_str().unwrap_or_default(), net.to_string());
    }
    println!("  net positions sum to {net_sum}; report digest sha256 {digest}");
    anyhow::ensure!(net_sum == Amount::ZERO, "the cycle's net positions do not sum to zero");
    if let Some(dir) = &args.report_dir {
        std::fs::create_dir_all(dir)?;
        let (_, csv) = operator.cycle_report(closed.id, ponte_sdk::ReportFormat::Csv).await?;
        let (_, xml) = operator.cycle_report(closed.id, ponte_sdk::ReportFormat::Camt053).await?;
        std::fs::write(dir.join(format!("cycle-{}.json", closed.id)), &json)?;
        std::fs::write(dir.join(format!("cycle-{}.csv", closed.id)), csv)?;
        std::fs::write(dir.join(format!("cycle-{}.camt053.xml", closed.id)), xml)?;
        println!("  reports written to {}", dir.display());
    }
    let confirmed = operator.confirm_cycle(closed.id).await?;
    println!("  the central bank confirms the RTGS posting: cycle {} {}", confirmed.id, confirmed.status.as_str());

    Ok(())
}

/// Customers of Caixa Serra register keys; a customer of Banco Atlântico
/// looks one up and pays it; a key nobody registered is refused.
async fn pay_by_key(clients: &BTreeMap<u32, Client>) -> anyhow::Result<()> {
    use ponte_sdk::directory::EndUser;
    use ponte_sdk::{KeyPayment, KeyType, Owner, OwnerKind};
    let (payer, payee) = (&clients[&10000001], &clients[&10000002]);
    let owner = Owner { kind: OwnerKind::Person, id: "529.982.247-25".into(), name: "Maria Souza da Silva".into() };
    let account = Account::new(pid(10000002), "1", "424242", AccountType::Savings)?;
    println!("\nThe directory");
    for (kind, value) in [
        (KeyType::Phone, "+5561988880000"),
        (KeyType::Email, "Maria.Souza@Example.com"),
        (KeyType::PersonId, "529.982.247-25"),
    ] {
        let entry = payee.register_key(kind, value, &account, &owner).await?;
        println!("  Caixa Serra registers a {} key for account {}", kind.as_str(), entry.account.number());
    }
    let random = payee.register_key(KeyType::Random, "", &account, &owner).await?;
    println!("  ...and a random key the directory makes: {}", random.key.value());
    let me = EndUser { kind: OwnerKind::Person, id: "11144477735".into() };
    let phone = ponte_directory::keys::parse(&payer.country(), KeyType::Phone, "+5561988880000")?;
    let found = payer.lookup_key(&phone, &me).await?;
    println!(
        "  Banco Atlântico looks up the phone key: {} at participant {} account {}",
        found.owner_name_masked,
        found.account.participant,
        found.account.number()
    );
    let payment = KeyPayment {
        id: payer.new_payment_id(),
        payer: Account::new(pid(10000001), "1", "111111", AccountType::Checking)?,
        payee_key: phone,
        lookup_by: Some(me),
        amount: Amount::parse_positive("42.00")?,
        remittance: "paid by key".into(),
    };
    println!("  ...and pays 42.00 to it: {}", label(&Ok(payer.submit_to_key(&payment).await?)));
    let nobody = ponte_directory::keys::parse(&payer.country(), KeyType::Email, "nobody@example.com")?;
    let stray = KeyPayment { id: payer.new_payment_id(), payee_key: nobody, lookup_by: None, ..payment };
    println!("  A payment to a key nobody registered: {}", label(&Ok(payer.submit_to_key(&stray).await?)));
    Ok(())
}

/// One bank's burst over a submit stream, with at most `INFLIGHT` payments awaiting outcomes.
async fn burst(
    client: Client,
    code: u32,
    count: u64,
    tally: Tally,
    sample: Arc<Mutex<Option<Payment>>>,
) -> anyhow::Result<()> {
    const BATCH: u64 = 256;
    const INFLIGHT: usize = 4_096;
    let (sender, mut receiver) = client.open_submit_stream().await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(INFLIGHT));
    let sent: Arc<Mutex<BTreeMap<String, Payment>>> = Arc::default();
    let producer = {
        let permits = permits.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut remaining = count;
            while remaining > 0 {
                let n = remaining.min(BATCH);
                remaining -= n;
                permits.acquire_many(n as u32).await?.forget();
                let now = now_ms();
                let batch: Vec<Payment> = {
                    let mut rng = rand::rng();
                    (0..n).map(|_| random_payment(&mut rng, code, now)).collect()
                };
                {
                    let mut sent = sent.lock().expect("sent");
                    for p in &batch {
                        sent.insert(p.id.to_string(), p.clone());
                    }
                }
                sender.send(&batch).await?;
            }
            anyhow::Ok(())
        })
    };
    let mut done = 0;
    while done < count {
        let Some(batch) = receiver.next().await else {
            break;
        };
        let batch = batch?;
        permits.add_permits(batch.len());
        let mut tally = tally.lock().expect("tally");
        for result in batch {
            done += 1;
            let payment = sent.lock().expect("sent").remove(&result.end_to_end_id);
            if let (Ok(PaymentOutcome::Settled { .. }), Some(payment)) = (&result.outcome, payment) {
                let mut sample = sample.lock().expect("sample");
                if sample.is_none() && payment.payee.participant.code() != 10000005 {
                    *sample = Some(payment);
                }
            }
            *tally.entry(label(&result.outcome)).or_default() += 1;
        }
    }
    producer.await??;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
