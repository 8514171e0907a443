//! Populating the directory: one phone key per simulated customer, each
//! registered by its bank for an account of its own, before the run.

use crate::country::{Bank, holder_of, phone_key};
use ponte_sdk::{Account, AccountType, Client, Identity, KeyType, Owner, OwnerKind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Registrations in flight at once.
const CONCURRENCY: u64 = 256;

/// Registers `count` phone keys (customer `n` gets [`phone_key`]`(n)` at the
/// bank [`holder_of`] says). Returns how long it took.
pub async fn register(
    endpoint: &str,
    certs: &Path,
    banks: &[Bank],
    count: u64,
    progress: bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut clients = Vec::new();
    for bank in banks {
        let identity = Identity::from_dev_dir(certs, &bank.code.to_string())?;
        clients.push(Client::connect(endpoint, bank.code, &identity).await?);
    }
    let clients = Arc::new(clients);
    let banks = Arc::new(banks.to_vec());
    let done = Arc::new(AtomicU64::new(0));
    let reporter = progress.then(|| {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                eprintln!("registering keys: {} of {count}", done.load(Ordering::Relaxed));
            }
        })
    });
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (clients, banks, done) = (clients.clone(), banks.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // One owner for every simulated customer is fine: the limit is per account.
            let owner = Owner { kind: OwnerKind::Person, id: "52998224725".into(), name: "Cliente Simulado".into() };
            let mut n = worker;
            while n < count {
                let holder = holder_of(&banks, n);
                let account =
                    Account::new(banks[holder].code, "1", &(10_000_000 + n).to_string(), AccountType::Checking)?;
                clients[holder].register_key(KeyType::Phone, &phone_key(n), &account, &owner).await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += CONCURRENCY;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    Ok(started.elapsed())
}
