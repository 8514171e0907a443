//! Receiving payments: the participant's inbox.
//!
//! [`Client::serve_inbox`] keeps one inbox stream open (reconnecting with a
//! capped backoff if it breaks) and calls an [`InboxHandler`] for each event.
//! Answers are batched back to the switch. Credit a customer only on
//! [`InboxHandler::on_settled`]: accepting is a promise, settlement is the fact.

use crate::client::Client;
use crate::wire;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ponte_domain::{Account, Amount, Decision, EndToEndId, ReasonCode};
use ponte_proto::v1 as pb;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// A payment the switch asks this participant to accept.
#[derive(Debug, Clone)]
pub struct IncomingPayment {
    pub id: EndToEndId,
    pub payer: Account,
    pub payee: Account,
    pub amount: Amount,
    pub remittance: String,
    /// Answer before this time (epoch ms, switch clock), or it is rejected.
    pub deadline_ms: i64,
}

/// A settled return of a payment this participant sent.
#[derive(Debug, Clone)]
pub struct ReturnNotice {
    pub return_id: EndToEndId,
    pub original: EndToEndId,
    pub amount: Amount,
    pub reason: ReasonCode,
    pub settled_at_ms: i64,
}

/// What a participant does with its inbox. Implement `on_payment`; the rest
/// have empty defaults.
pub trait InboxHandler: Send + Sync + 'static {
    /// Decide whether to accept a payment (check the account exists, is open...).
    fn on_payment(&self, payment: IncomingPayment) -> impl Future<Output = Decision> + Send;

    /// The payment is settled: credit the payee's customer now.
    fn on_settled(&self, _id: EndToEndId, _at_ms: i64) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The payment will not settle (answer too late, or timed out): do not credit.
    fn on_cancelled(&self, _id: EndToEndId, _reason: ReasonCode) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A return of a payment this participant sent is settled: credit the payer back.
    fn on_returned(&self, _notice: ReturnNotice) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A recall: one of a payment this participant received, to answer
    /// (state `Open`: return the payment with [`Client::return_payment`] or
    /// refuse with [`Client::refuse_recall`] before `answer_by_ms`; told
    /// again each time the inbox opens while it is open), or one this
    /// participant made that closed. The default logs it.
    fn on_recall(&self, recall: crate::Recall) -> impl Future<Output = ()> + Send {
        async move {
            tracing::info!(original = %recall.original, state = ?recall.state, "recall");
        }
    }

    /// The switch could not take an answer this inbox sent (`id` as the
    /// answer carried it, `error` the field and why): nothing was decided,
    /// and the payment is rejected at its deadline unless answered again.
    /// The SDK's own answers are always well formed; the default logs it.
    fn on_answer_refused(&self, id: String, error: String) -> impl Future<Output = ()> + Send {
        async move { tracing::warn!(end_to_end_id = %id, %error, "the switch refused an answer of this inbox") }
    }
}

/// Handlers running at once per inbox; more wait (backpressure on the stream).
const HANDLERS_INFLIGHT_MAX: usize = 8_192;
/// Answers sent in one `InboxUp`.
const ANSWERS_BATCH_MAX: usize = 1_024;
/// Longest wait, when stopping, for the switch to close its half of the stream.
const STOP_DRAIN_MAX: Duration = Duration::from_secs(5);
/// Longest wait between reconnection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Controls a running inbox.
#[derive(Debug)]
pub struct InboxHandle {
    connected: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl InboxHandle {
    /// Waits until the inbox stream is open at the switch.
    pub async fn connected(&mut self) {
        let _ = self.connected.wait_for(|c| *c).await;
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Closes the inbox and waits for it to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Client {
    /// Opens this participant's inbox and serves it with `handler` until
    /// [`InboxHandle::stop`]. Reconnects by itself if the stream breaks.
    pub fn serve_inbox<H: InboxHandler>(&self, handler: H) -> InboxHandle {
        let (connected_tx, connected) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let client = self.clone();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                if *stop_rx.borrow() {
                    return;
                }
                let (up_tx, up_rx) = mpsc::channel::<pb::InboxUp>(64);
                match client.raw().inbox(ReceiverStream::new(up_rx)).await {
                    Ok(response) => {
                        backoff = Duration::from_millis(50);
                        let _ = connected_tx.send(true);
                        serve(response.into_inner(), up_tx, handler.clone(), stop_rx.clone()).await;
                        let _ = connected_tx.send(false);
                    }
                    Err(status) => tracing::warn!(%status, "inbox could not be opened"),
                }
                let mut stop_wait = stop_rx.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop_wait.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        });
        InboxHandle { connected, stop, task }
    }
}

async fn serve<H: InboxHandler>(
    mut down: tonic::Streaming<pb::InboxDown>,
    up: mpsc::Sender<pb::InboxUp>,
    handler: Arc<H>,
    mut stop: watch::Receiver<bool>,
) {
    let (answers_tx, answers_rx) = mpsc::channel::<pb::PayeeAnswer>(HANDLERS_INFLIGHT_MAX);
    let mut answering = Answering {
        // Answers ready at once go out through this sender; it is dropped
        // with the writer on stop, so that our half of the stream ends.
        direct: Some(up.clone()),
        later: answers_tx,
        permits: Arc::new(Semaphore::new(HANDLERS_INFLIGHT_MAX)),
    };
    let mut writer = Some(spawn_answer_writer(up, answers_rx));
    // Stopping closes our half of the stream; the switch then unregisters
    // the inbox and ends its half, which we wait for (bounded) so that once
    // `stop` returns the switch no longer counts this inbox as open.
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let message = match drain_until {
            None => tokio::select! {
                m = down.message() => m,
                _ = stop.wait_for(|s| *s) => {
                    if let Some(writer) = writer.take() {
                        writer.abort();
                    }
                    answering.direct = None;
                    drain_until = Some(tokio::time::Instant::now() + STOP_DRAIN_MAX);
                    continue;
                }
            },
            Some(until) => match tokio::time::timeout_at(until, down.message()).await {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let batch = match message {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(status) => {
                if drain_until.is_none() {
                    tracing::warn!(%status, "inbox stream broke");
                }
                break;
            }
        };
        // While closing, incoming payments cannot be answered any more
        // (they will time out); notices are still handled.
        let closing = drain_until.is_some();
        let events = batch
            .events
            .into_iter()
            .filter_map(|e| e.event)
            .filter(|e| !(closing && matches!(e, pb::inbox_event::Event::Payment(_))));
        answering.handle(events, &handler, &mut stop).await;
    }
    if let Some(writer) = writer {
        writer.abort();
    }
}

/// Sends the answers of handlers that took their time, batched as they
/// come.
fn spawn_answer_writer(
    up: mpsc::Sender<pb::InboxUp>,
    mut answers: mpsc::Receiver<pb::PayeeAnswer>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(first) = answers.recv().await {
            let mut batch = vec![first];
            while batch.len() < ANSWERS_BATCH_MAX {
                match answers.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            if up.send(pb::InboxUp { answers: batch }).await.is_err() {
                return;
            }
        }
    })
}

/// Where the answers of one inbox stream go, and the bound on handlers
/// running at once.
struct Answering {
    /// The stream itself, for answers ready at once; `None` once stopping.
    direct: Option<mpsc::Sender<pb::InboxUp>>,
    /// The writer task, for answers that come later.
    later: mpsc::Sender<pb::PayeeAnswer>,
    permits: Arc<Semaphore>,
}

impl Answering {
    /// Runs the handlers of one received message. Handlers that decide at
    /// once (no I/O) are answered from here, all in one message, with no
    /// task or channel in between; the others go on in one task per
    /// received message, each answer sent as it is ready.
    async fn handle<H: InboxHandler>(
        &self,
        events: impl Iterator<Item = pb::inbox_event::Event>,
        handler: &Arc<H>,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut events = events.peekable();
        while events.peek().is_some() {
            let chunk: Vec<_> = events.by_ref().take(HANDLERS_INFLIGHT_MAX).collect();
            let Ok(permit) = self.permits.clone().acquire_many_owned(chunk.len() as u32).await else { break };
            let mut running: FuturesUnordered<_> = chunk
                .into_iter()
                .map(|event| {
                    let handler = handler.clone();
                    async move { handle(event, &*handler).await }
                })
                .collect();
            let mut ready = Vec::new();
            while let Some(Some(answer)) = futures::future::poll_immediate(running.next()).await {
                ready.extend(answer);
            }
            self.send_ready(ready, stop).await;
            if !running.is_empty() {
                let answers = self.later.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    while let Some(answer) = running.next().await {
                        if let Some(answer) = answer {
                            let _ = answers.send(answer).await;
                        }
                    }
                });
            }
        }
    }

    /// Sends the answers ready at once on the stream, at most a batch per
    /// message. A stop request is seen even while the switch is slow to
    /// take answers; `serve` then drops `direct`.
    async fn send_ready(&self, mut ready: Vec<pb::PayeeAnswer>, stop: &mut watch::Receiver<bool>) {
        while let (Some(up), false) = (&self.direct, ready.is_empty()) {
            let answers = if ready.len() <= ANSWERS_BATCH_MAX {
                std::mem::take(&mut ready)
            } else {
                ready.drain(..ANSWERS_BATCH_MAX).collect()
            };
            let sent = tokio::select! {
                sent = up.send(pb::InboxUp { answers }) => sent.is_ok(),
                _ = stop.wait_for(|s| *s) => false,
            };
            if !sent {
                break;
            }
        }
    }
}

/// Runs the handler for one event; a payment's answer is returned.
async fn handle<H: InboxHandler>(event: pb::inbox_event::Event, handler: &H) -> Option<pb::PayeeAnswer> {
    use pb::inbox_event::Event;
    match event {
        Event::Payment(p) => {
            let parsed = (|| -> Result<IncomingPayment, wire::FieldError> {
                Ok(IncomingPayment {
                    id: wire::end_to_end_id("end_to_end_id", &p.end_to_end_id)?,
                    payer: wire::account_from_wire("payer", p.payer.as_ref())?,
                    payee: wire::account_from_wire("payee", p.payee.as_ref())?,
                    amount: wire::amount_positive("amount", &p.amount)?,
                    remittance: p.remittance.clone(),
                    deadline_ms: p.deadline_ms,
                })
            })();
            let decision = match parsed {
                Ok(payment) => handler.on_payment(payment).await,
                Err(error) => {
                    tracing::warn!(%error, "unreadable incoming payment rejected");
                    Decision::Reject(ReasonCode::RejectedByPayee)
                }
            };
            return Some(wire::answer_to_wire(p.end_to_end_id, decision));
        }
        Event::Settled(s) => {
            if let Ok(id) = wire::end_to_end_id("end_to_end_id", &s.end_to_end_id) {
                handler.on_settled(id, s.settled_at_ms).await;
            }
        }
        Event::Cancelled(c) => {
            if let (Ok(id), Ok(reason)) =
                (wire::end_to_end_id("end_to_end_id", &c.end_to_end_id), wire::reason_from_wire(c.reason.as_ref()))
            {
                handler.on_cancelled(id, reason).await;
            }
        }
        Event::Returned(r) => {
            let notice = (|| -> Result<ReturnNotice, wire::FieldError> {
                Ok(ReturnNotice {
                    return_id: wire::end_to_end_id("return_id", &r.return_id)?,
                    original: wire::end_to_end_id("original_end_to_end_id", &r.original_end_to_end_id)?,
                    amount: wire::amount_positive("amount", &r.amount)?,
                    reason: wire::reason_from_wire(r.reason.as_ref())?,
                    settled_at_ms: r.settled_at_ms,
                })
            })();
            if let Ok(notice) = notice {
                handler.on_returned(notice).await;
            }
        }
        Event::Refused(r) => handler.on_answer_refused(r.end_to_end_id, r.error).await,
        Event::Recall(r) => match crate::recall::recall_from_wire(&r) {
            Ok(recall) => handler.on_recall(recall).await,
            Err(error) => tracing::warn!(%error, "unreadable recall notice ignored"),
        },
    }
    None
}
