//! `--iso20022` mode: the same country, speaking ISO 20022 XML to the
//! switch's gateway over HTTPS/mTLS (HTTP/2) instead of gRPC. Every bank
//! sends pacs.008 documents of `--batch` payments and reads the pacs.002
//! answer; every bank is also a payee that reads its inbox channel and
//! answers each pacs.008 it gets with a pacs.002 accepting it. Latency is
//! per document, as the payer sees it (all its payments settled or refused).

use crate::country::Bank;
use hdrhistogram::Histogram;
use ponte_domain::{Account, AccountType, EndToEndId, IdKind, ParticipantId};
use ponte_iso20022::model::*;
use ponte_iso20022::{Inbound, read};
use ponte_sdk::iso20022::IsoClient;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What an `--iso20022` run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IsoRun {
    pub settled: u64,
    pub rejected: u64,
    pub errors: u64,
    pub measured_s: f64,
    pub throughput_per_s: f64,
    /// Payments per pacs.008 document.
    pub batch: usize,
    /// Documents each bank keeps in flight.
    pub inflight: usize,
    pub document_latency_ms: Latency,
    /// The CPU over the measured window: the whole process, the load
    /// generator's threads, and so the switch's.
    pub cpu: Option<crate::report::CpuUse>,
    /// Microseconds of CPU per settled payment, of the switch alone.
    pub switch_cpu_us_per_payment: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Default)]
struct Counters {
    settled: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
}

fn account(code: ParticipantId) -> CashAccount {
    let account = Account::new(code, "1", "1234", AccountType::Checking).expect("a valid account");
    ponte_switch::iso20022::convert::account_to_iso(&account)
}

fn document(payer: ParticipantId, payees: &[ParticipantId], batch: usize, n: &mut usize) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let txs = (0..batch)
        .map(|_| {
            *n += 1;
            let payee = payees[*n % payees.len()];
            CreditTransferTx {
                PmtId: PaymentId {
                    EndToEndId: EndToEndId::generate(IdKind::Payment, payer, now).to_string(),
                    ..Default::default()
                },
                IntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: "10.00".into() },
                ChrgBr: "SLEV".into(),
                DbtrAcct: Some(account(payer)),
                DbtrAgt: ponte_switch::iso20022::convert::agent(payer),
                CdtrAgt: ponte_switch::iso20022::convert::agent(payee),
                CdtrAcct: Some(account(payee)),
                ..Default::default()
            }
        })
        .collect();
    let header = BatchHeader {
        MsgId: format!("LOAD{payer}{n}"),
        CreDtTm: "2026-12-07T12:00:00Z".into(),
        NbOfTxs: batch.to_string(),
        SttlmInf: SttlmInf { SttlmMtd: "CLRG".into() },
        ..Default::default()
    };
    ponte_iso20022::write_pacs008(&CreditTransfer { GrpHdr: header, CdtTrfTxInf: txs })
}

/// A bank's inbox: every pacs.008 answered ACCP in one pacs.002.
async fn serve_inbox(client: IsoClient, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut inbox = client.inbox().await?;
    while let Some(line) = inbox.next_document().await? {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(Inbound::CreditTransfer(payments)) = read(line.as_bytes()) else { continue };
        let answers = payments
            .CdtTrfTxInf
            .into_iter()
            .map(|tx| TxStatus {
                OrgnlEndToEndId: Some(tx.PmtId.EndToEndId),
                TxSts: Some("ACCP".into()),
                ..Default::default()
            })
            .collect();
        let report = StatusReport {
            GrpHdr: Header { MsgId: "ANSWERS".into(), CreDtTm: "2026-12-07T12:00:00Z".into(), ..Default::default() },
            OrgnlGrpInfAndSts: None,
            TxInfAndSts: answers,
        };
        let client = client.clone();
        tokio::spawn(async move { client.post(ponte_iso20022::write_pacs002(&report)).await });
    }
    Ok(())
}

/// Drives the gateway at `addr` for `warmup` + `duration`.
pub async fn run(
    addr: SocketAddr,
    certs: &Path,
    banks: &[Bank],
    duration: Duration,
    warmup: Duration,
    batch: usize,
    inflight: usize,
) -> anyhow::Result<IsoRun> {
    let codes: Vec<ParticipantId> = banks.iter().map(|b| b.code).collect();
    let stop = Arc::new(AtomicBool::new(false));
    for code in &codes {
        let inbox = IsoClient::from_dev_dir(addr, certs, &code.to_string()).await?;
        tokio::spawn(serve_inbox(inbox, stop.clone()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counters = Arc::new(Counters::default());
    let measuring = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let mut tasks = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let client = IsoClient::from_dev_dir(addr, certs, &code.to_string()).await?;
        let payees: Vec<ParticipantId> = codes.iter().copied().filter(|c| c != code).collect();
        for lane in 0..inflight {
            let (client, payees, stop, counters, measuring, latencies) =
                (client.clone(), payees.clone(), stop.clone(), counters.clone(), measuring.clone(), latencies.clone());
            let payer = *code;
            tasks.push(tokio::spawn(async move {
                let mut n = i * 1_000 + lane * 7;
                while !stop.load(Ordering::Relaxed) {
                    let xml = document(payer, &payees, batch, &mut n);
                    let started = Instant::now();
                    let answered = client.post(xml).await;
                    let counting = measuring.load(Ordering::Relaxed);
                    match answered {
                        Ok((200, body)) => {
                            let Ok(Inbound::StatusReport(report)) = read(body.as_bytes()) else {
                                counters.errors.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            if counting {
                                let settled =
                                    report.TxInfAndSts.iter().filter(|s| s.TxSts.as_deref() == Some("ACSC")).count();
                                counters.settled.fetch_add(settled as u64, Ordering::Relaxed);
                                counters
                                    .rejected
                                    .fetch_add((report.TxInfAndSts.len() - settled) as u64, Ordering::Relaxed);
                                let micros = started.elapsed().as_micros() as u64;
                                let _ = latencies.lock().expect("not poisoned").record(micros.max(1));
                            }
                        }
                        _ => {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
        }
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let before = crate::report::CpuSample::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let measured_s = started.elapsed().as_secs_f64();
    let cpu = before.zip(crate::report::CpuSample::now()).and_then(|(before, after)| before.until(&after));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let settled = counters.settled.load(Ordering::Relaxed);
    let histogram = latencies.lock().expect("not poisoned");
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    Ok(IsoRun {
        settled,
        rejected: counters.rejected.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        measured_s,
        throughput_per_s: settled as f64 / measured_s,
        batch,
        inflight,
        document_latency_ms: Latency { p50: ms(0.5), p99: ms(0.99), max: histogram.max() as f64 / 1_000.0 },
        cpu,
        switch_cpu_us_per_payment: cpu
            .filter(|_| settled > 0)
            .map(|c| (c.process_cores - c.generator_cores) * measured_s * 1e6 / settled as f64),
    })
}
