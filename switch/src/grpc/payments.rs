//! `ponte.v1.Payments`: payments, returns, status, reconciliation and the
//! payees' inbox streams.

use super::ServiceConfig;
use super::paging::CYCLE_TRANSFERS_PAGE;
use super::status::to_status;
use crate::net::tls::participant_of;
use crate::runtime::{EngineHandle, InboxChange, Request, SubmitError, Waiter};
use futures::Stream;
use ponte_directory::keys::Country;
use ponte_domain::CURRENCY;
use ponte_domain::{Account, IdKind, ParticipantId, ReasonCode};
use ponte_ledger::op::{self};
use ponte_ledger::{Delivery, Effect, Outcome, PaymentOrder, REMITTANCE_LEN_MAX, ReturnNotice, ReturnOrder};
use ponte_proto::v1 as pb;
use ponte_wire::{self as wire, FieldError};
use ponte_wire::{account_to_wire, reason_to_wire};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request as GrpcRequest, Response, Status, Streaming};

/// Moves what `rx` holds now into `out` (up to `max` in all), converted by
/// `wire`; returns how many it moved.
fn drain<T>(
    rx: &mut mpsc::Receiver<T>,
    out: &mut Vec<pb::PaymentResult>,
    max: usize,
    wire: impl Fn(T) -> pb::PaymentResult,
) -> usize {
    let before = out.len();
    while out.len() < max {
        match rx.try_recv() {
            Ok(item) => out.push(wire(item)),
            Err(_) => break,
        }
    }
    out.len() - before
}

fn remittance(text: &str) -> Result<String, Status> {
    if text.chars().count() > REMITTANCE_LEN_MAX {
        return Err(to_status(FieldError::new("remittance", format_args!("at most {REMITTANCE_LEN_MAX} characters"))));
    }
    if text.chars().any(char::is_control) {
        return Err(to_status(FieldError::new("remittance", "must not contain control characters")));
    }
    Ok(text.to_owned())
}

/// A participant sends only ids it made (their code is in them).
fn made_by_caller(field: &str, id: ponte_domain::EndToEndId, caller: ParticipantId) -> Result<(), Status> {
    if id.participant() != caller {
        return Err(super::status::denied(format!(
            "{field}: made by participant {}, but the caller is {caller}",
            id.participant()
        )));
    }
    Ok(())
}

/// Parses and checks a payment request from `caller`.
pub fn payment_order(
    country: Country,
    caller: ParticipantId,
    request: &pb::PaymentRequest,
) -> Result<PaymentOrder, Status> {
    let id = wire::end_to_end_id("end_to_end_id", &request.end_to_end_id).map_err(to_status)?;
    if id.kind() != IdKind::Payment {
        return Err(to_status(FieldError::new("end_to_end_id", "a payment id starts with 'E'")));
    }
    made_by_caller("end_to_end_id", id, caller)?;
    let payer = wire::account_from_wire("payer", request.payer.as_ref()).map_err(to_status)?;
    if payer.participant != caller {
        return Err(super::status::denied(format!(
            "participant {caller} cannot pay from an account at participant {}",
            payer.participant
        )));
    }
    let (payee, payee_key) = match request.payee.as_ref().and_then(|p| p.target.as_ref()) {
        Some(pb::payee::Target::Account(account)) => {
            (wire::account_from_wire("payee.account", Some(account)).map_err(to_status)?, None)
        }
        Some(pb::payee::Target::Key(key)) => {
            (Account::unresolved(), Some(wire::key_from_wire(&country, "payee.key", Some(key)).map_err(to_status)?))
        }
        None => return Err(to_status(FieldError::new("payee", "is required"))),
    };
    let lookup_by = match &request.lookup_by {
        Some(user) => Some(wire::end_user_from_wire(&country, "lookup_by", user).map_err(to_status)?),
        None => None,
    };
    let amount = wire::amount_positive("amount", &request.amount).map_err(to_status)?;
    if request.currency != CURRENCY {
        return Err(to_status(FieldError::new("currency", format_args!("this switch settles in {CURRENCY}"))));
    }
    Ok(PaymentOrder { id, payer, payee, payee_key, lookup_by, amount, remittance: remittance(&request.remittance)? })
}

pub fn result_to_wire(id: &str, outcome: Outcome) -> pb::PaymentResult {
    match outcome {
        Outcome::Settled { at } => pb::PaymentResult {
            end_to_end_id: id.to_owned(),
            status: pb::PaymentStatus::Settled as i32,
            settled_at_ms: at,
            ..Default::default()
        },
        Outcome::Rejected { reason } => pb::PaymentResult {
            end_to_end_id: id.to_owned(),
            status: pb::PaymentStatus::Rejected as i32,
            reason: Some(reason_to_wire(reason)),
            ..Default::default()
        },
    }
}

fn item_error(id: &str, status: &Status) -> pb::PaymentResult {
    pb::PaymentResult {
        end_to_end_id: id.to_owned(),
        error: Some(pb::ItemError { grpc_code: status.code() as i32, message: status.message().to_owned() }),
        ..Default::default()
    }
}

/// Encodes a group of inbox frames for the wire.
/// `items` in pieces of at most `max` (one piece, not copied, when it fits).
pub(crate) fn in_pieces<T>(items: Vec<T>, max: usize) -> Vec<Vec<T>> {
    if items.len() <= max || max == 0 {
        return vec![items];
    }
    let mut pieces = Vec::with_capacity(items.len().div_ceil(max));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        pieces.push(items.by_ref().take(max).collect());
    }
    pieces
}

fn inbox_down(effects: Vec<Effect>) -> pb::InboxDown {
    use pb::inbox_event::Event;
    let events = effects
        .into_iter()
        .map(|effect| {
            let event = match effect {
                Effect::Deliver(delivery) => {
                    let Delivery { id, payer, payee, amount, remittance, deadline } = *delivery;
                    Event::Payment(pb::IncomingPayment {
                        end_to_end_id: id.to_string(),
                        payer: Some(account_to_wire(&payer)),
                        payee: Some(account_to_wire(&payee)),
                        amount: amount.to_string(),
                        currency: CURRENCY.to_owned(),
                        remittance,
                        deadline_ms: deadline,
                    })
                }
                Effect::Settled { id, at, .. } => {
                    Event::Settled(pb::SettledNotice { end_to_end_id: id.to_string(), settled_at_ms: at })
                }
                Effect::Cancelled { id, reason, .. } => Event::Cancelled(pb::CancelledNotice {
                    end_to_end_id: id.to_string(),
                    reason: Some(reason_to_wire(reason)),
                }),
                Effect::Returned(notice) => {
                    let ReturnNotice { id, original, amount, reason, at, .. } = *notice;
                    Event::Returned(pb::ReturnNotice {
                        return_id: id.to_string(),
                        original_end_to_end_id: original.to_string(),
                        amount: amount.to_string(),
                        reason: Some(reason_to_wire(reason)),
                        settled_at_ms: at,
                    })
                }
                Effect::Recall(recall) => Event::Recall(super::recalls::recall_to_wire(&recall)),
            };
            pb::InboxEvent { event: Some(event) }
        })
        .collect();
    pb::InboxDown { events }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// `ponte.v1.Payments`.
#[derive(Debug, Clone)]
pub struct PaymentsService {
    engine: EngineHandle,
    config: Arc<ServiceConfig>,
}

impl PaymentsService {
    pub fn new(engine: EngineHandle, config: ServiceConfig) -> PaymentsService {
        PaymentsService { engine, config: Arc::new(config) }
    }

    async fn registered(&self, caller: ParticipantId) -> Result<(), Status> {
        match self.engine.ask(op::GetParticipant { id: caller }).await.map_err(to_status)? {
            Ok(_) => Ok(()),
            Err(_) => Err(super::status::denied(format!("participant {caller} is not registered at this switch"))),
        }
    }
}

#[tonic::async_trait]
impl pb::payments_server::Payments for PaymentsService {
    async fn submit(&self, request: GrpcRequest<pb::PaymentRequest>) -> Result<Response<pb::PaymentResult>, Status> {
        let caller = participant_of(&request)?;
        let message = request.into_inner();
        let order = payment_order(self.engine.engine_config().country, caller, &message)?;
        let (tx, rx) = oneshot::channel();
        self.engine.try_send(Request::Submit(op::Submit(order), Waiter::Once(tx))).map_err(to_status)?;
        let outcome = rx.await.map_err(|_| {
            super::status::error(
                tonic::Code::Unavailable,
                "the outcome was not delivered; query the status by end-to-end id",
                "OUTCOME_NOT_DELIVERED",
            )
        })?;
        Ok(Response::new(result_to_wire(&message.end_to_end_id, outcome)))
    }

    type SubmitStreamStream = BoxStream<pb::ResultBatch>;

    async fn submit_stream(
        &self,
        request: GrpcRequest<Streaming<pb::SubmitBatch>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        let caller = participant_of(&request)?;
        let incoming = request.into_inner();
        let inflight_max = self.config.stream_inflight_max;
        // Every payment holds a permit until its result is sent back, and
        // the results channel has room for all permits: the journal thread
        // never finds it full.
        let permits = Arc::new(Semaphore::new(inflight_max));
        let (results_tx, results_rx) = mpsc::channel(inflight_max);
        let (errors_tx, errors_rx) = mpsc::channel(inflight_max);
        // Payments refused for want of room never held a permit, so their
        // answers must not return one: they travel apart.
        let (refused_tx, refused_rx) = mpsc::channel(inflight_max);
        let (fatal_tx, fatal_rx) = mpsc::channel(1);
        let reader = StreamReader {
            caller,
            engine: self.engine.clone(),
            config: self.config.clone(),
            permits: permits.clone(),
            results: results_tx,
            errors: errors_tx,
            refused: refused_tx,
            fatal: fatal_tx,
            overloaded: false,
        };
        tokio::spawn(reader.run(incoming));
        let results = ResultChannels {
            results: results_rx,
            errors: errors_rx,
            refused: refused_rx,
            fatal: fatal_rx,
            permits,
            stats: self.engine.stats_arc(),
        };
        Ok(Response::new(Box::pin(results.batches(self.config.submit_batch_max))))
    }

    type InboxStream = BoxStream<pb::InboxDown>;

    async fn inbox(&self, request: GrpcRequest<Streaming<pb::InboxUp>>) -> Result<Response<Self::InboxStream>, Status> {
        let caller = participant_of(&request)?;
        self.registered(caller).await?;
        let mut answers = request.into_inner();
        let stream = self.engine.next_stream_id();
        let (frames_tx, frames_rx) = mpsc::channel(self.config.inbox_queue_max);
        self.engine
            .send(Request::Inbox(InboxChange::Opened { participant: caller, stream, frames: frames_tx }))
            .await
            .map_err(to_status)?;
        let engine = self.engine.clone();
        let answers_max = self.config.answers_batch_max;
        let stats = self.engine.stats_arc();
        let frames_stats = stats.clone();
        // Why the switch closed this inbox, told to the payee as the
        // stream's final status (a clean end otherwise).
        let (closed_tx, closed_rx) = oneshot::channel::<Status>();
        // Answers the switch could not take, told back on this inbox.
        let (refused_tx, refused_rx) = mpsc::channel::<pb::AnswerRefused>(answers_max);
        tokio::spawn(async move {
            'stream: while let Some(Ok(up)) = answers.next().await {
                stats.streams.answers.count(up.answers.len());
                if up.answers.len() > answers_max {
                    tracing::warn!(participant = %caller, "inbox answers batch over the bound; stream closed");
                    let _ = closed_tx.send(super::status::invalid(
                        "answers",
                        format!("at most {answers_max} answers per InboxUp; this inbox stream is closed"),
                    ));
                    break;
                }
                for answer in up.answers {
                    let read = wire::end_to_end_id("end_to_end_id", &answer.end_to_end_id).and_then(|id| {
                        Ok((id, wire::decision_from_wire(answer.decision, &answer.reject_reason, answer.reject_code)?))
                    });
                    let (id, decision) = match read {
                        Ok(read) => read,
                        Err(error) => {
                            // Told back on this inbox, never dropped in silence.
                            stats.answers_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let refused = pb::AnswerRefused {
                                end_to_end_id: answer.end_to_end_id.chars().take(64).collect(),
                                error: error.to_string(),
                            };
                            if refused_tx.try_send(refused).is_err() {
                                tracing::warn!(participant = %caller, "inbox refused-answer queue full; stream closed");
                                let _ = closed_tx.send(super::status::error(
                                    tonic::Code::ResourceExhausted,
                                    "too many refused answers not yet read; this inbox stream is closed",
                                    "TOO_MANY_REFUSED_ANSWERS",
                                ));
                                break 'stream;
                            }
                            continue;
                        }
                    };
                    let answered = Request::Answer(op::Answer { payee: caller, id, decision });
                    if engine.send(answered).await.is_err() {
                        return;
                    }
                }
            }
            let _ = engine.send(Request::Inbox(InboxChange::Closed { participant: caller, stream })).await;
        });
        // No InboxDown carries more events than an InboxUp may answer.
        let frames = futures::StreamExt::flat_map(ReceiverStream::new(frames_rx), move |effects| {
            let stats = frames_stats.clone();
            futures::stream::iter(in_pieces(effects, answers_max).into_iter().map(move |piece| {
                stats.streams.inbox.count(piece.len());
                Ok(inbox_down(piece))
            }))
        });
        let refused = ReceiverStream::new(refused_rx).map(|refused| {
            Ok(pb::InboxDown { events: vec![pb::InboxEvent { event: Some(pb::inbox_event::Event::Refused(refused)) }] })
        });
        let frames = futures::stream::select(frames, refused);
        let reason = futures::stream::once(closed_rx).filter_map(|closed| closed.ok().map(Err));
        Ok(Response::new(Box::pin(frames.chain(reason))))
    }

    async fn cycle_transfers(
        &self,
        request: GrpcRequest<pb::CycleTransfersRequest>,
    ) -> Result<Response<pb::CycleTransfersResponse>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let id = m.cycle;
        let size = super::paging::page_size(m.page_size, CYCLE_TRANSFERS_PAGE);
        let after = super::paging::cycle_transfers_after(&m.page_token, id).map_err(to_status)?;
        let mut views = super::archived::cycle_transfers_page(&self.engine, caller, id, after, size + 1).await?;
        let next_page_token =
            super::paging::cut_page(&mut views, size, |last| super::paging::cycle_transfers_token(id, last.0));
        Ok(Response::new(pb::CycleTransfersResponse {
            cycle: id,
            transfers: views.iter().map(|(_, view)| wire::transfer_to_wire(view)).collect(),
            next_page_token,
        }))
    }

    async fn get_status(
        &self,
        request: GrpcRequest<pb::StatusRequest>,
    ) -> Result<Response<pb::TransferStatus>, Status> {
        let caller = participant_of(&request)?;
        let id = wire::end_to_end_id("end_to_end_id", &request.get_ref().end_to_end_id).map_err(to_status)?;
        match super::archived::status(&self.engine, caller, id).await? {
            Some(view) => Ok(Response::new(wire::transfer_to_wire(&view))),
            None => Err(super::status::not_found(format!(
                "no payment or return {id} sent or received by participant {caller} (transfers are kept {} days \
                 after they settle)",
                super::archived::retention_days(&self.engine)
            ))),
        }
    }

    async fn r#return(&self, request: GrpcRequest<pb::ReturnRequest>) -> Result<Response<pb::PaymentResult>, Status> {
        let caller = participant_of(&request)?;
        Ok(Response::new(give_back(&self.engine, caller, request.into_inner()).await?))
    }

    async fn recall(&self, request: GrpcRequest<pb::RecallRequest>) -> Result<Response<pb::RecallStatus>, Status> {
        let caller = participant_of(&request)?;
        let recall = super::recalls::ask_recall(&self.engine, caller, request.get_ref()).await?;
        Ok(Response::new(super::recalls::recall_to_wire(&recall)))
    }

    async fn refuse_recall(
        &self,
        request: GrpcRequest<pb::RefuseRecallRequest>,
    ) -> Result<Response<pb::RecallStatus>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let (original, code, text) = (&m.original_end_to_end_id, m.reason_code, &m.reason);
        let recall = super::recalls::refuse_recall(&self.engine, caller, original, code, text).await?;
        Ok(Response::new(super::recalls::recall_to_wire(&recall)))
    }

    async fn get_recall(
        &self,
        request: GrpcRequest<pb::GetRecallRequest>,
    ) -> Result<Response<pb::RecallStatus>, Status> {
        let caller = participant_of(&request)?;
        let field = "original_end_to_end_id";
        let original = wire::end_to_end_id(field, &request.get_ref().original_end_to_end_id).map_err(to_status)?;
        match self.engine.ask(op::GetRecall { caller, original }).await.map_err(to_status)? {
            Some(recall) => Ok(Response::new(super::recalls::recall_to_wire(&recall))),
            None => Err(super::status::error(
                tonic::Code::NotFound,
                format!("no recall of payment {original} sent or received by participant {caller}"),
                "NO_RECALL",
            )),
        }
    }
}

/// A return from `caller`, checked and executed: its outcome (the gRPC
/// `Return` and the ISO 20022 gateway's pacs.004 both come here).
pub(crate) async fn give_back(
    engine: &EngineHandle,
    caller: ParticipantId,
    message: pb::ReturnRequest,
) -> Result<pb::PaymentResult, Status> {
    let id = wire::end_to_end_id("return_id", &message.return_id).map_err(to_status)?;
    if id.kind() != IdKind::Return {
        return Err(to_status(FieldError::new("return_id", "a return id starts with 'D'")));
    }
    made_by_caller("return_id", id, caller)?;
    let original = wire::end_to_end_id("original_end_to_end_id", &message.original_end_to_end_id).map_err(to_status)?;
    let amount = wire::amount_positive("amount", &message.amount).map_err(to_status)?;
    let reason = wire::reason_code_from_wire("reason", message.reason_code, &message.reason).map_err(to_status)?;
    let reason = reason.filter(|r| r.is_payee_reason()).ok_or_else(|| {
        to_status(FieldError::new("reason", "must be a return reason code such as MD06, FR01 or BE08"))
    })?;
    let order =
        ReturnOrder { returner: caller, id, original, amount, reason, remittance: remittance(&message.remittance)? };
    let mut archived = None;
    let outcome = loop {
        let (tx, rx) = oneshot::channel();
        let give_back = op::Return(order.clone(), archived.take());
        engine.try_send(Request::Return(give_back, tx)).map_err(to_status)?;
        let submitted = rx.await.map_err(|_| {
            super::status::error(
                tonic::Code::Unavailable,
                "the outcome was not delivered; query the status by return id",
                "OUTCOME_NOT_DELIVERED",
            )
        })?;
        match submitted {
            op::Submitted::Final(outcome) => break outcome,
            op::Submitted::Pending => unreachable!("a return never waits for a payee"),
            // The original left memory: once more with it from the
            // archive (the engine holds it in neither case only if it
            // never settled, or is past retention).
            op::Submitted::NotHeld(mark) => match super::archived::original(engine, mark, order.original).await? {
                Some(original) if archived.is_none() => archived = Some(Box::new(original)),
                _ => break Outcome::Rejected { reason: ReasonCode::OriginalNotFound },
            },
        }
    };
    Ok(result_to_wire(&message.return_id, outcome))
}

/// The task that reads a submit stream: admits each batch under the
/// stream's in-flight bound and hands its payments to the engine.
struct StreamReader {
    caller: ParticipantId,
    engine: EngineHandle,
    config: Arc<ServiceConfig>,
    permits: Arc<Semaphore>,
    results: mpsc::Sender<(ponte_domain::EndToEndId, Outcome)>,
    errors: mpsc::Sender<pb::PaymentResult>,
    refused: mpsc::Sender<pb::PaymentResult>,
    fatal: mpsc::Sender<Status>,
    /// Set when a batch found no room within the admission wait: the
    /// batches behind it (already sent, waiting in the stream) are then
    /// admitted only if there is room at once, else refused at once.
    /// Waiting for each in turn would add the waits up, and an admitted
    /// payment would queue behind every refused batch.
    overloaded: bool,
}

/// Whether a batch got room in the stream.
enum Admission {
    Admitted(tokio::sync::OwnedSemaphorePermit),
    Refused,
    /// The stream is closing.
    Closed,
}

impl StreamReader {
    async fn run(mut self, mut incoming: Streaming<pb::SubmitBatch>) {
        let stats = self.engine.stats_arc();
        loop {
            let batch = match incoming.next().await {
                Some(Ok(batch)) => batch,
                Some(Err(status)) => {
                    tracing::debug!(%status, "submit stream ended by the client");
                    break;
                }
                None => break,
            };
            let batch_max = self.config.submit_batch_max;
            if batch.payments.len() > batch_max {
                let status =
                    super::status::invalid("payments", format!("payments: at most {batch_max} per SubmitBatch"));
                let _ = self.fatal.send(status).await;
                break;
            }
            stats.streams.submits.count(batch.payments.len());
            match self.admit(batch.payments.len() as u32).await {
                Admission::Admitted(held) => {
                    held.forget();
                    self.submit_all(batch);
                }
                Admission::Refused => {
                    if self.refuse(&batch).await.is_err() {
                        return;
                    }
                }
                Admission::Closed => break,
            }
        }
    }

    async fn admit(&mut self, wanted: u32) -> Admission {
        let permits = self.permits.clone();
        let admitted = if self.overloaded {
            match permits.try_acquire_many_owned(wanted) {
                Ok(held) => Admission::Admitted(held),
                Err(tokio::sync::TryAcquireError::NoPermits) => Admission::Refused,
                Err(tokio::sync::TryAcquireError::Closed) => Admission::Closed,
            }
        } else {
            let wait = std::time::Duration::from_millis(self.config.stream_admission_wait_ms);
            match tokio::time::timeout(wait, permits.acquire_many_owned(wanted)).await {
                Ok(Ok(held)) => Admission::Admitted(held),
                Ok(Err(_closed)) => Admission::Closed,
                Err(_elapsed) => Admission::Refused,
            }
        };
        self.overloaded = matches!(admitted, Admission::Refused);
        admitted
    }

    /// Over capacity: the batch is refused now (nothing of it executed;
    /// retryable with the same ids) instead of queueing behind the stream.
    /// Err once nobody reads the answers.
    async fn refuse(&self, batch: &pb::SubmitBatch) -> Result<(), ()> {
        let overloaded = to_status(SubmitError::Overloaded);
        for payment in &batch.payments {
            self.refused.send(item_error(&payment.end_to_end_id, &overloaded)).await.map_err(|_| ())?;
        }
        Ok(())
    }

    fn submit_all(&self, batch: pb::SubmitBatch) {
        for payment in batch.payments {
            let sent = payment_order(self.engine.engine_config().country, self.caller, &payment).and_then(|order| {
                let waiter = Waiter::Stream(self.results.clone());
                self.engine.try_send(Request::Submit(op::Submit(order), waiter)).map_err(to_status)
            });
            if let Err(status) = sent {
                let _ = self.errors.try_send(item_error(&payment.end_to_end_id, &status));
            }
        }
    }
}

/// What flows back on a submit stream: outcomes of admitted payments,
/// their parse or queue errors, refusals of whole batches, and a fatal
/// status that ends the stream.
struct ResultChannels {
    results: mpsc::Receiver<(ponte_domain::EndToEndId, Outcome)>,
    errors: mpsc::Receiver<pb::PaymentResult>,
    refused: mpsc::Receiver<pb::PaymentResult>,
    fatal: mpsc::Receiver<Status>,
    permits: Arc<Semaphore>,
    stats: Arc<crate::runtime::Stats>,
}

impl ResultChannels {
    /// Each message carries every result ready at that moment (at most a
    /// batch): batching follows the load, with no timer adding latency.
    fn batches(self, batch_max: usize) -> impl Stream<Item = Result<pb::ResultBatch, Status>> {
        futures::stream::unfold(self, move |mut channels| async move {
            let message = channels.next_batch(batch_max).await?;
            Some((message, channels))
        })
    }

    async fn next_batch(&mut self, batch_max: usize) -> Option<Result<pb::ResultBatch, Status>> {
        let mut out = Vec::new();
        // Answers of admitted payments give their permits back; refusals
        // never held one.
        let mut admitted = 0;
        tokio::select! {
            biased;
            Some(status) = self.fatal.recv() => return Some(Err(status)),
            Some((id, outcome)) = self.results.recv() => {
                out.push(result_to_wire(id.as_str(), outcome));
                admitted += 1;
            }
            Some(item) = self.errors.recv() => {
                out.push(item);
                admitted += 1;
            }
            Some(item) = self.refused.recv() => out.push(item),
            else => return None,
        }
        admitted += drain(&mut self.results, &mut out, batch_max, |(id, outcome)| result_to_wire(id.as_str(), outcome));
        admitted += drain(&mut self.errors, &mut out, batch_max, |item| item);
        drain(&mut self.refused, &mut out, batch_max, |item| item);
        self.permits.add_permits(admitted);
        self.stats.streams.results.count(out.len());
        Some(Ok(pb::ResultBatch { results: out }))
    }
}

#[cfg(test)]
mod tests {
    use super::in_pieces;

    #[test]
    fn inbox_frames_are_cut_to_what_a_reply_may_answer() {
        assert_eq!(in_pieces(vec![1, 2, 3], 4), vec![vec![1, 2, 3]]);
        assert_eq!(in_pieces((0..10).collect(), 4), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        let pieces = in_pieces((0..10_000).collect::<Vec<u32>>(), 4_096);
        assert_eq!(pieces.iter().map(Vec::len).collect::<Vec<_>>(), [4_096, 4_096, 1_808]);
        assert_eq!(pieces.concat(), (0..10_000).collect::<Vec<u32>>(), "in order, nothing lost");
    }
}
