//! Driving load: closed loop (as fast as the switch answers, a bounded
//! window of payments in flight) or open loop (a fixed rate, latency
//! measured from when each payment *should* have been sent, so a stalled
//! switch cannot hide its stall — no coordinated omission).

use crate::country::{Bank, holder_of, phone_key, pick_payee};
use crate::recorder::{Recorder, Result_, classify, measured, spawn_progress};
use ponte_domain::{CURRENCY, ParticipantId};
use ponte_proto::v1 as pb;
use ponte_proto::v1::payments_client::PaymentsClient;
use ponte_sdk::Identity;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// How payments are submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// Bidirectional submit streams, one per payer participant, batched.
    Streams,
    /// One unary call per payment.
    Unary,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub endpoint: String,
    /// Directory with `ca.pem` and `CODE.pem`/`CODE.key` for every bank.
    pub certs: PathBuf,
    pub banks: Vec<Bank>,
    pub submission: Submission,
    /// Payments per second in total (open loop); `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Payments in flight at once, over all banks (closed loop), or the
    /// most an open loop may have outstanding before the run is declared
    /// unsustainable.
    pub window: usize,
    pub duration: Duration,
    /// Not measured: lets connections, caches and the allocator settle.
    pub warmup: Duration,
    /// Payments per stream message.
    pub batch: usize,
    /// Whether to print a progress line every second.
    pub progress: bool,
    /// Phone keys registered in the directory (see [`crate::keys`]); 0: none.
    pub keys: u64,
    /// Fraction of payments that name a key instead of an account.
    pub key_share: f64,
}

pub use crate::recorder::{Measured, Second};

/// Makes end-to-end ids without allocation-heavy formatting: `E`, the
/// payer's code, the current UTC minute, then 3 random characters for this
/// run and 8 base-36 digits of a per-payer sequence number.
struct IdMaker {
    prefix: [u8; 21],
    run: [u8; 3],
    minute_of: u64,
}

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl IdMaker {
    fn new(code: ParticipantId, run: [u8; 3]) -> IdMaker {
        let mut prefix = [0_u8; 21];
        prefix[0] = b'E';
        prefix[1..9].copy_from_slice(code.to_string().as_bytes());
        let mut maker = IdMaker { prefix, run, minute_of: u64::MAX };
        maker.refresh();
        maker
    }

    fn refresh(&mut self) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let minute = now.as_secs() / 60;
        if minute == self.minute_of {
            return;
        }
        self.minute_of = minute;
        let t =
            time::OffsetDateTime::from_unix_timestamp((minute * 60) as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let stamp = format!("{:04}{:02}{:02}{:02}{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute());
        self.prefix[9..21].copy_from_slice(stamp.as_bytes());
    }

    fn make(&self, seq: u64) -> String {
        let mut id = [0_u8; 32];
        id[..21].copy_from_slice(&self.prefix);
        id[21..24].copy_from_slice(&self.run);
        let mut n = seq;
        for slot in id[24..].iter_mut().rev() {
            *slot = BASE36[(n % 36) as usize];
            n /= 36;
        }
        String::from_utf8(id.to_vec()).expect("ASCII")
    }

    fn seq_of(id: &str) -> Option<u64> {
        let digits = id.as_bytes().get(24..32)?;
        digits.iter().try_fold(0_u64, |acc, &b| {
            let d = BASE36.iter().position(|&c| c == b)? as u64;
            Some(acc * 36 + d)
        })
    }
}

fn account(code: &str, number: &str) -> pb::Account {
    pb::Account {
        participant: code.to_owned(),
        branch: "0001".into(),
        number: number.into(),
        r#type: pb::AccountType::Checking as i32,
    }
}

/// Who a payment goes to: how many keys exist and how often payers use one.
#[derive(Debug, Clone, Copy)]
struct Keys {
    count: u64,
    share: f64,
}

fn payment(
    rng: &mut impl Rng,
    banks: &[Bank],
    codes: &[String],
    payer: usize,
    id: String,
    keys: Keys,
) -> pb::PaymentRequest {
    let cents: u32 = rng.random_range(1_00..500_00);
    let mut target = None;
    if keys.count > 0 && rng.random::<f64>() < keys.share {
        // A customer of another bank (a payment inside one bank never reaches the switch).
        for _ in 0..16 {
            let n = rng.random_range(0..keys.count);
            if holder_of(banks, n) != payer {
                let key = pb::Key { r#type: pb::KeyType::Phone as i32, value: phone_key(n) };
                target = Some(pb::payee::Target::Key(key));
                break;
            }
        }
    }
    let target = target.unwrap_or_else(|| {
        let payee = pick_payee(rng, banks, payer);
        pb::payee::Target::Account(account(&codes[payee], "7654321"))
    });
    pb::PaymentRequest {
        end_to_end_id: id,
        payer: Some(account(&codes[payer], "1234567")),
        payee: Some(pb::Payee { target: Some(target) }),
        amount: format!("{}.{:02}", cents / 100, cents % 100),
        currency: CURRENCY.to_owned(),
        remittance: String::new(),
        lookup_by: None,
    }
}

/// Connects one channel per bank.
pub async fn connect(config: &LoadConfig) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for bank in &config.banks {
        let identity = Identity::from_dev_dir(&config.certs, &bank.code.to_string())?;
        channels.push(identity.channel(&config.endpoint).await?);
    }
    Ok(channels)
}

/// Runs the load and returns what was measured.
pub async fn run(config: LoadConfig, channels: Vec<Channel>) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let recorder = Arc::new(Mutex::new(Recorder::new(start, config.warmup, config.duration)));
    let stop_at = start + config.warmup + config.duration;
    let run: [u8; 3] = {
        let mut rng = rand::rng();
        std::array::from_fn(|_| BASE36[rng.random_range(0..36)])
    };
    let codes: Arc<Vec<String>> = Arc::new(config.banks.iter().map(|b| b.code.to_string()).collect());
    let banks = Arc::new(config.banks.clone());
    let inflight_total = Arc::new(std::sync::atomic::AtomicI64::new(0));

    let progress = config.progress.then(|| spawn_progress(recorder.clone(), inflight_total.clone(), start));

    let lane = |index: usize, ids: IdMaker, rate: Option<f64>| Lane {
        keys: Keys { count: config.keys, share: config.key_share },
        index,
        channel: channels[index].clone(),
        banks: banks.clone(),
        codes: codes.clone(),
        ids,
        rate,
        start,
        stop_at,
        recorder: recorder.clone(),
        inflight: inflight_total.clone(),
    };
    let mut tasks = Vec::new();
    match config.submission {
        Submission::Streams => {
            for (index, bank) in config.banks.iter().enumerate() {
                let window = ((config.window as f64 * bank.weight).ceil() as usize).max(config.batch.min(64));
                let rate = config.rate.map(|r| r * bank.weight);
                tasks.push(tokio::spawn(stream_bank(StreamBank {
                    lane: lane(index, IdMaker::new(bank.code, run), rate),
                    window,
                    batch: config.batch,
                })));
            }
        }
        Submission::Unary => {
            let per_bank = unary_callers_per_bank(&config);
            for (index, count) in per_bank.into_iter().enumerate() {
                let rate = config.rate.map(|r| r * config.banks[index].weight / count as f64);
                for caller in 0..count {
                    let mut ids = IdMaker::new(config.banks[index].code, run);
                    ids.run[2] = BASE36[caller % 36];
                    tasks.push(tokio::spawn(unary_caller(UnaryCaller {
                        lane: lane(index, ids, rate),
                        seq_base: (caller as u64) << 32,
                        // The bank's callers take turns, evenly spaced,
                        // rather than all calling at the same instants.
                        phase: caller as f64 / count as f64,
                    })));
                }
            }
        }
    }
    for task in tasks {
        task.await??;
    }
    if let Some(progress) = progress {
        progress.abort();
        let _ = progress.await;
    }
    let recorder = Arc::try_unwrap(recorder).map_err(|_| anyhow::anyhow!("recorder still shared"))?;
    Ok(measured(recorder.into_inner().expect("recorder"), config.duration))
}

/// Unary callers spread over banks by weight, at least one each.
fn unary_callers_per_bank(config: &LoadConfig) -> Vec<usize> {
    let callers = config.window.max(config.banks.len());
    let mut per_bank: Vec<usize> =
        config.banks.iter().map(|b| ((callers as f64 * b.weight).round() as usize).max(1)).collect();
    let assigned: usize = per_bank.iter().sum();
    if let Some(first) = per_bank.first_mut() {
        *first += callers.saturating_sub(assigned);
    }
    per_bank
}

/// What one payer's load loop needs, in either submission mode.
struct Lane {
    keys: Keys,
    index: usize,
    channel: Channel,
    banks: Arc<Vec<Bank>>,
    codes: Arc<Vec<String>>,
    ids: IdMaker,
    /// Payments per second (open loop); `None`: as fast as answered.
    rate: Option<f64>,
    start: Instant,
    stop_at: Instant,
    recorder: Arc<Mutex<Recorder>>,
    inflight: Arc<std::sync::atomic::AtomicI64>,
}

struct StreamBank {
    lane: Lane,
    window: usize,
    batch: usize,
}

/// How long after the end of sending outstanding payments may still finish.
const DRAIN_MAX: Duration = Duration::from_secs(10);

/// Records each result a submit stream sends back and frees its permit,
/// until the stream ends or the drain time after the run passes.
fn receive_results(
    mut results: tonic::Streaming<pb::ResultBatch>,
    permits: Arc<Semaphore>,
    sent_at: Arc<Mutex<HashMap<u64, Instant>>>,
    lane: &Lane,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use std::sync::atomic::Ordering::Relaxed;
    let (recorder, inflight, stop_at) = (lane.recorder.clone(), lane.inflight.clone(), lane.stop_at);
    async move {
        loop {
            let message = match tokio::time::timeout_at((stop_at + DRAIN_MAX).into(), results.message()).await {
                Ok(Ok(Some(m))) => m,
                _ => break,
            };
            let now = Instant::now();
            let n = message.results.len();
            {
                let mut sent = sent_at.lock().expect("sent_at");
                let mut recorder = recorder.lock().expect("recorder");
                for result in &message.results {
                    let at = IdMaker::seq_of(&result.end_to_end_id).and_then(|seq| sent.remove(&seq));
                    let latency = at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
                    recorder.record(now, latency, classify(result));
                }
            }
            inflight.fetch_sub(n as i64, Relaxed);
            permits.add_permits(n);
        }
    }
}

async fn stream_bank(mut s: StreamBank) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::SubmitBatch>(16);
    let mut client = PaymentsClient::new(s.lane.channel.clone()).max_decoding_message_size(64 << 20);
    let results = client.submit_stream(ReceiverStream::new(rx)).await?.into_inner();
    let permits = Arc::new(Semaphore::new(s.window));
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::new(Mutex::new(HashMap::with_capacity(s.window * 2)));

    let receiver = tokio::spawn(receive_results(results, permits.clone(), sent_at.clone(), &s.lane));

    let mut seq: u64 = 0;
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < s.lane.stop_at {
        // How many to send now: a batch (closed loop), or what is due (open loop).
        let (count, intended) = match s.lane.rate {
            None => (s.batch.min(s.window), None),
            Some(rate) => {
                tick.tick().await;
                let due = due_by(s.lane.start.elapsed().as_secs_f64(), rate);
                if due <= seq {
                    continue;
                }
                ((due - seq).min(s.batch.min(s.window) as u64) as usize, Some(rate))
            }
        };
        let Ok(permit) = permits.clone().acquire_many_owned(count as u32).await else {
            break;
        };
        permit.forget();
        s.lane.ids.refresh();
        let now = Instant::now();
        let mut payments = Vec::with_capacity(count);
        {
            let mut sent = sent_at.lock().expect("sent_at");
            for _ in 0..count {
                let when = match intended {
                    // Open loop: latency counts from when it should have gone.
                    Some(rate) => s.lane.start + Duration::from_secs_f64(seq as f64 / rate),
                    None => now,
                };
                sent.insert(seq, when);
                payments.push(payment(
                    &mut rng,
                    &s.lane.banks,
                    &s.lane.codes,
                    s.lane.index,
                    s.lane.ids.make(seq),
                    s.lane.keys,
                ));
                seq += 1;
            }
        }
        s.lane.recorder.lock().expect("recorder").sent += count as u64;
        s.lane.inflight.fetch_add(count as i64, Relaxed);
        if tx.send(pb::SubmitBatch { payments }).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = receiver.await;
    Ok(())
}

/// How many payments of an open loop at `rate` per second are due
/// `elapsed` seconds after its start: payment `seq` is due at `seq / rate`,
/// so payments `0 ..= elapsed × rate` are.
fn due_by(elapsed: f64, rate: f64) -> u64 {
    (elapsed * rate) as u64 + 1
}

struct UnaryCaller {
    lane: Lane,
    seq_base: u64,
    /// Where in its period (0 ≤ phase < 1) this caller's payments fall (open loop).
    phase: f64,
}

async fn unary_caller(mut u: UnaryCaller) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut client = PaymentsClient::new(u.lane.channel.clone());
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut seq = 0_u64;
    while Instant::now() < u.lane.stop_at {
        let intended = match u.lane.rate {
            None => Instant::now(),
            Some(rate) => {
                let at = u.lane.start + Duration::from_secs_f64((seq as f64 + u.phase) / rate);
                tokio::time::sleep_until(at.into()).await;
                at
            }
        };
        u.lane.ids.refresh();
        let request = payment(
            &mut rng,
            &u.lane.banks,
            &u.lane.codes,
            u.lane.index,
            u.lane.ids.make(u.seq_base + seq),
            u.lane.keys,
        );
        seq += 1;
        u.lane.recorder.lock().expect("recorder").sent += 1;
        u.lane.inflight.fetch_add(1, Relaxed);
        let outcome = client.submit(request).await;
        u.lane.inflight.fetch_sub(1, Relaxed);
        let now = Instant::now();
        let result = match outcome {
            Ok(response) => classify(response.get_ref()),
            Err(status) => Result_::Error(format!("{:?}", status.code())),
        };
        u.lane.recorder.lock().expect("recorder").record(now, now.saturating_duration_since(intended), result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_loop_payment_is_due_at_its_own_time_not_one_period_later() {
        // 50 per second: payment 0 at 0 ms, payment 1 at 20 ms, ...
        assert_eq!(due_by(0.0, 50.0), 1, "payment 0 is due at the start");
        assert_eq!(due_by(0.019, 50.0), 1);
        assert_eq!(due_by(0.020, 50.0), 2, "payment 1 at 20 ms");
        assert_eq!(due_by(1.0, 50.0), 51);
    }

    #[test]
    fn ids_are_valid_and_carry_their_sequence() {
        let code = ParticipantId::new(10000007).unwrap();
        let maker = IdMaker::new(code, *b"AB9");
        for seq in [0, 1, 35, 36, 123_456_789, 36_u64.pow(8) - 1] {
            let id = maker.make(seq);
            let parsed = ponte_domain::EndToEndId::parse(&id).unwrap();
            assert_eq!(parsed.participant(), code);
            assert_eq!(IdMaker::seq_of(&id), Some(seq));
        }
    }
}
