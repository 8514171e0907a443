//! The gRPC services: `ponte.v1.Payments` for participants and
//! `ponte.v1.Operator` for the central bank.
//!
//! Each call authenticates the caller from its client certificate, parses
//! and bounds every field (a malformed one is INVALID_ARGUMENT naming the
//! field), and hands a command to the engine. Business outcomes come back as
//! values; [`status_of`] is the one table from runtime errors to gRPC codes.

use crate::runtime::{EngineHandle, Request, SubmitError, Waiter};
use crate::tls::{participant_of, require_operator};
use futures::Stream;
use ponte_directory::claims::ClaimError;
use ponte_directory::keys::KeyType;
use ponte_directory::registry::{DirectoryError, NewKey, OwnerKind};
use ponte_domain::{Account, Amount, IdKind, ParticipantId, ReasonCode, TransferState};
use ponte_ledger::op::{self, Operation};
use ponte_ledger::{
    AdminError, Decision, Delivery, Effect, EndUser, LookupError, Outcome, ParticipantStatus, ParticipantView,
    PaymentOrder, REMITTANCE_LEN_MAX, ReturnNotice, ReturnOrder, TransferView,
};
use ponte_proto::v1 as pb;
use ponte_wire::{self as wire, FieldError};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request as GrpcRequest, Response, Status, Streaming};

pub use ponte_domain::CURRENCY;
pub use ponte_wire::{account_to_wire, reason_to_wire};

/// Bounds on what one call or stream may ask of the switch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Payments in one `SubmitBatch` (default 1,024).
    pub submit_batch_max: usize,
    /// Payments one submit stream may have awaiting their outcome (default 16,384).
    pub stream_inflight_max: usize,
    /// How long a submitted batch may wait for room under
    /// `stream_inflight_max` before its payments are answered
    /// RESOURCE_EXHAUSTED instead of queued (default 250 ms): an overloaded
    /// switch answers at once rather than letting senders' queues grow.
    /// The batches behind a refused one are admitted only if there is room
    /// at once, so waits never add up.
    pub stream_admission_wait_ms: u64,
    /// Answers in one `InboxUp` (default 4,096).
    pub answers_batch_max: usize,
    /// Largest message the switch decodes, in bytes (default 4 MiB).
    pub message_bytes_max: usize,
    /// Inbox messages waiting to be sent on one inbox stream (default 4,096;
    /// each carries the frames of one journal group). A payee that falls
    /// this far behind loses frames: its payments time out safely.
    pub inbox_queue_max: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            submit_batch_max: 1_024,
            stream_inflight_max: 16_384,
            stream_admission_wait_ms: 250,
            answers_batch_max: 4_096,
            message_bytes_max: 4 * 1024 * 1024,
            inbox_queue_max: 4_096,
        }
    }
}

/// The one mapping from runtime errors to gRPC status codes.
pub fn status_of(error: SubmitError) -> Status {
    match error {
        SubmitError::Overloaded => Status::resource_exhausted(error.to_string()),
        SubmitError::Stopped => Status::unavailable(error.to_string()),
    }
}

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

fn invalid(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

fn admin_status(error: AdminError) -> Status {
    match error {
        AdminError::UnknownParticipant(_) => Status::not_found(error.to_string()),
        AdminError::AlreadyRegistered(_) => Status::already_exists(error.to_string()),
        AdminError::InvalidName
        | AdminError::ReservedCode
        | AdminError::InvalidCategory
        | AdminError::NonPositiveAmount => Status::invalid_argument(error.to_string()),
        AdminError::NotPrefunded | AdminError::InsufficientFunds { .. } => {
            Status::failed_precondition(error.to_string())
        }
    }
}

fn remittance(text: &str) -> Result<String, Status> {
    if text.chars().count() > REMITTANCE_LEN_MAX {
        return Err(invalid(FieldError::new("remittance", format_args!("at most {REMITTANCE_LEN_MAX} characters"))));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(FieldError::new("remittance", "must not contain control characters")));
    }
    Ok(text.to_owned())
}

/// Parses and checks a payment request from `caller`.
pub fn payment_order(caller: ParticipantId, request: &pb::PaymentRequest) -> Result<PaymentOrder, Status> {
    let id = wire::end_to_end_id("end_to_end_id", &request.end_to_end_id).map_err(invalid)?;
    if id.kind() != IdKind::Payment {
        return Err(invalid(FieldError::new("end_to_end_id", "a payment id starts with 'E'")));
    }
    if id.participant() != caller {
        return Err(Status::permission_denied(format!(
            "end_to_end_id: made by participant {}, but the caller is {caller}",
            id.participant()
        )));
    }
    let payer = wire::account_from_wire("payer", request.payer.as_ref()).map_err(invalid)?;
    if payer.participant != caller {
        return Err(Status::permission_denied(format!(
            "participant {caller} cannot pay from an account at participant {}",
            payer.participant
        )));
    }
    let (payee, payee_key) = match request.payee.as_ref().and_then(|p| p.target.as_ref()) {
        Some(pb::payee::Target::Account(account)) => {
            (wire::account_from_wire("payee.account", Some(account)).map_err(invalid)?, None)
        }
        Some(pb::payee::Target::Key(key)) => {
            (Account::unresolved(), Some(wire::key_from_wire("payee.key", Some(key)).map_err(invalid)?))
        }
        None => return Err(invalid(FieldError::new("payee", "is required"))),
    };
    let lookup_by = match &request.lookup_by {
        Some(user) => Some(end_user("lookup_by", user)?),
        None => None,
    };
    let amount = wire::amount_positive("amount", &request.amount).map_err(invalid)?;
    if request.currency != CURRENCY {
        return Err(invalid(FieldError::new("currency", format_args!("this switch settles in {CURRENCY}"))));
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

fn state_to_wire(state: TransferState) -> pb::PaymentStatus {
    match state {
        TransferState::Received => pb::PaymentStatus::Received,
        TransferState::Reserved => pb::PaymentStatus::Reserved,
        TransferState::Settled => pb::PaymentStatus::Settled,
        TransferState::Rejected => pb::PaymentStatus::Rejected,
    }
}

fn transfer_to_wire(view: &TransferView) -> pb::TransferStatus {
    pb::TransferStatus {
        end_to_end_id: view.id.to_string(),
        status: state_to_wire(view.state) as i32,
        reason: view.reason.map(reason_to_wire),
        payer: Some(account_to_wire(&view.payer)),
        payee: Some(account_to_wire(&view.payee)),
        amount: view.amount.to_string(),
        created_at_ms: view.created_at,
        settled_at_ms: view.settled_at.unwrap_or(0),
        returned_amount: view.returned.to_string(),
        original_end_to_end_id: view.original.map(|o| o.to_string()).unwrap_or_default(),
    }
}

fn participant_to_wire(view: &ParticipantView) -> pb::Participant {
    pb::Participant {
        code: view.id.to_string(),
        name: view.name.clone(),
        status: match view.status {
            ParticipantStatus::Active => pb::ParticipantStatus::Active,
            ParticipantStatus::Suspended => pb::ParticipantStatus::Suspended,
        } as i32,
        net_debit_cap: view.net_debit_cap.to_string(),
        position: view.position.to_string(),
        reserved: view.reserved.to_string(),
        available: view.available.to_string(),
        online: view.online,
        liquidity: match view.liquidity {
            ponte_ledger::Liquidity::NetDebitCap => pb::Liquidity::NetDebitCap,
            ponte_ledger::Liquidity::Prefunded => pb::Liquidity::Prefunded,
        } as i32,
        balance: view.balance.to_string(),
    }
}

/// Encodes a group of inbox frames for the wire.
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
        match self.engine.ask(op::GetParticipant { id: caller }).await.map_err(status_of)? {
            Ok(_) => Ok(()),
            Err(_) => Err(Status::permission_denied(format!("participant {caller} is not registered at this switch"))),
        }
    }
}

#[tonic::async_trait]
impl pb::payments_server::Payments for PaymentsService {
    async fn submit(&self, request: GrpcRequest<pb::PaymentRequest>) -> Result<Response<pb::PaymentResult>, Status> {
        let caller = participant_of(&request)?;
        let message = request.into_inner();
        let order = payment_order(caller, &message)?;
        let (tx, rx) = oneshot::channel();
        self.engine.try_send(Request::Submit(op::Submit(order), Waiter::Once(tx))).map_err(status_of)?;
        let outcome = rx
            .await
            .map_err(|_| Status::unavailable("the outcome was not delivered; query the status by end-to-end id"))?;
        Ok(Response::new(result_to_wire(&message.end_to_end_id, outcome)))
    }

    type SubmitStreamStream = BoxStream<pb::ResultBatch>;

    async fn submit_stream(
        &self,
        request: GrpcRequest<Streaming<pb::SubmitBatch>>,
    ) -> Result<Response<Self::SubmitStreamStream>, Status> {
        let caller = participant_of(&request)?;
        let mut incoming = request.into_inner();
        let inflight_max = self.config.stream_inflight_max;
        // Every payment holds a permit until its result is sent back, and
        // the results channel has room for all permits: the journal thread
        // never finds it full.
        let permits = Arc::new(Semaphore::new(inflight_max));
        let (results_tx, results_rx) = mpsc::channel::<(ponte_domain::EndToEndId, Outcome)>(inflight_max);
        let (errors_tx, errors_rx) = mpsc::channel::<pb::PaymentResult>(inflight_max);
        // Payments refused for want of room never held a permit, so their
        // answers must not return one: they travel apart.
        let (refused_tx, refused_rx) = mpsc::channel::<pb::PaymentResult>(inflight_max);
        let (fatal_tx, fatal_rx) = mpsc::channel::<Status>(1);
        let engine = self.engine.clone();
        let config = self.config.clone();
        let reader_permits = permits.clone();
        let stats = self.engine.stats_arc();
        let results_stats = stats.clone();
        tokio::spawn(async move {
            // Set when a batch found no room within the admission wait: the
            // batches behind it (already sent, waiting in the stream) are
            // then admitted only if there is room at once, else refused at
            // once. Waiting for each in turn would add the waits up, and
            // an admitted payment would queue behind every refused batch.
            let mut overloaded = false;
            loop {
                let batch = match incoming.next().await {
                    Some(Ok(batch)) => batch,
                    Some(Err(status)) => {
                        tracing::debug!(%status, "submit stream ended by the client");
                        break;
                    }
                    None => break,
                };
                if batch.payments.len() > config.submit_batch_max {
                    let _ = fatal_tx
                        .send(Status::invalid_argument(format!(
                            "payments: at most {} per SubmitBatch",
                            config.submit_batch_max
                        )))
                        .await;
                    break;
                }
                stats.streams.submits.count(batch.payments.len());
                let wanted = batch.payments.len() as u32;
                let admitted = if overloaded {
                    match reader_permits.clone().try_acquire_many_owned(wanted) {
                        Ok(held) => Some(held),
                        Err(tokio::sync::TryAcquireError::NoPermits) => None,
                        Err(tokio::sync::TryAcquireError::Closed) => break,
                    }
                } else {
                    let wait = std::time::Duration::from_millis(config.stream_admission_wait_ms);
                    match tokio::time::timeout(wait, reader_permits.clone().acquire_many_owned(wanted)).await {
                        Ok(Ok(held)) => Some(held),
                        Ok(Err(_closed)) => break,
                        Err(_elapsed) => None,
                    }
                };
                overloaded = admitted.is_none();
                let held = match admitted {
                    Some(held) => held,
                    None => {
                        // Over capacity: refuse the batch now (nothing of it
                        // executed; retryable with the same ids) instead of
                        // queueing it behind the stream.
                        let overloaded = status_of(SubmitError::Overloaded);
                        for payment in &batch.payments {
                            if refused_tx.send(item_error(&payment.end_to_end_id, &overloaded)).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                };
                held.forget();
                for payment in batch.payments {
                    let sent = payment_order(caller, &payment).and_then(|order| {
                        engine
                            .try_send(Request::Submit(op::Submit(order), Waiter::Stream(results_tx.clone())))
                            .map_err(status_of)
                    });
                    if let Err(status) = sent {
                        let _ = errors_tx.try_send(item_error(&payment.end_to_end_id, &status));
                    }
                }
            }
        });
        // Each message carries every result ready at that moment (at most a
        // batch): batching follows the load, with no timer adding latency.
        let batch_max = self.config.submit_batch_max;
        let state = (results_rx, errors_rx, refused_rx, fatal_rx, permits, results_stats);
        let batches = futures::stream::unfold(
            state,
            move |(mut results, mut errors, mut refused, mut fatal, permits, stats)| async move {
                let mut out = Vec::new();
                // Answers of admitted payments give their permits back;
                // refusals never held one.
                let mut admitted = 0;
                tokio::select! {
                    biased;
                    Some(status) = fatal.recv() => return Some((Err(status), (results, errors, refused, fatal, permits, stats))),
                    Some((id, outcome)) = results.recv() => {
                        out.push(result_to_wire(id.as_str(), outcome));
                        admitted += 1;
                    }
                    Some(item) = errors.recv() => {
                        out.push(item);
                        admitted += 1;
                    }
                    Some(item) = refused.recv() => out.push(item),
                    else => return None,
                }
                admitted +=
                    drain(&mut results, &mut out, batch_max, |(id, outcome)| result_to_wire(id.as_str(), outcome));
                admitted += drain(&mut errors, &mut out, batch_max, |item| item);
                drain(&mut refused, &mut out, batch_max, |item| item);
                permits.add_permits(admitted);
                stats.streams.results.count(out.len());
                Some((Ok(pb::ResultBatch { results: out }), (results, errors, refused, fatal, permits, stats)))
            },
        );
        Ok(Response::new(Box::pin(batches)))
    }

    type InboxStream = BoxStream<pb::InboxDown>;

    async fn inbox(&self, request: GrpcRequest<Streaming<pb::InboxUp>>) -> Result<Response<Self::InboxStream>, Status> {
        let caller = participant_of(&request)?;
        self.registered(caller).await?;
        let mut answers = request.into_inner();
        let stream = self.engine.next_stream_id();
        let (frames_tx, frames_rx) = mpsc::channel(self.config.inbox_queue_max);
        self.engine
            .send(Request::InboxOpened { participant: caller, stream, frames: frames_tx })
            .await
            .map_err(status_of)?;
        let engine = self.engine.clone();
        let answers_max = self.config.answers_batch_max;
        let stats = self.engine.stats_arc();
        let frames_stats = stats.clone();
        // Why the switch closed this inbox, told to the payee as the
        // stream's final status (a clean end otherwise).
        let (closed_tx, closed_rx) = oneshot::channel::<Status>();
        tokio::spawn(async move {
            while let Some(Ok(up)) = answers.next().await {
                stats.streams.answers.count(up.answers.len());
                if up.answers.len() > answers_max {
                    tracing::warn!(participant = %caller, "inbox answers batch over the bound; stream closed");
                    let _ = closed_tx.send(Status::invalid_argument(format!(
                        "at most {answers_max} answers per InboxUp; this inbox stream is closed"
                    )));
                    break;
                }
                for answer in up.answers {
                    let Ok(id) = wire::end_to_end_id("end_to_end_id", &answer.end_to_end_id) else {
                        continue;
                    };
                    let decision = match pb::Decision::try_from(answer.decision) {
                        Ok(pb::Decision::Accept) => Decision::Accept,
                        Ok(pb::Decision::Reject) => {
                            Decision::Reject(answer.reject_reason.parse().unwrap_or(ReasonCode::RejectedByPayee))
                        }
                        _ => continue,
                    };
                    let answered = Request::Answer(op::Answer { payee: caller, id, decision });
                    if engine.send(answered).await.is_err() {
                        return;
                    }
                }
            }
            let _ = engine.send(Request::InboxClosed { participant: caller, stream }).await;
        });
        let frames = ReceiverStream::new(frames_rx).map(move |effects| {
            frames_stats.streams.inbox.count(effects.len());
            Ok(inbox_down(effects))
        });
        let reason = futures::stream::once(closed_rx).filter_map(|closed| closed.ok().map(Err));
        Ok(Response::new(Box::pin(frames.chain(reason))))
    }

    async fn cycle_transfers(
        &self,
        request: GrpcRequest<pb::CycleTransfersRequest>,
    ) -> Result<Response<pb::CycleTransfersResponse>, Status> {
        let caller = participant_of(&request)?;
        let id = request.get_ref().cycle;
        match self.engine.ask(op::CycleTransfers { caller, id }).await.map_err(status_of)? {
            Ok(views) => Ok(Response::new(pb::CycleTransfersResponse {
                cycle: id,
                transfers: views.iter().map(transfer_to_wire).collect(),
            })),
            Err(error) => Err(Status::not_found(error.to_string())),
        }
    }

    async fn get_status(
        &self,
        request: GrpcRequest<pb::StatusRequest>,
    ) -> Result<Response<pb::TransferStatus>, Status> {
        let caller = participant_of(&request)?;
        let id = wire::end_to_end_id("end_to_end_id", &request.get_ref().end_to_end_id).map_err(invalid)?;
        match self.engine.ask(op::Status { caller, id }).await.map_err(status_of)? {
            Some(view) => Ok(Response::new(transfer_to_wire(&view))),
            None => {
                Err(Status::not_found(format!("no payment or return {id} sent or received by participant {caller}")))
            }
        }
    }

    async fn r#return(&self, request: GrpcRequest<pb::ReturnRequest>) -> Result<Response<pb::PaymentResult>, Status> {
        let caller = participant_of(&request)?;
        let message = request.into_inner();
        let id = wire::end_to_end_id("return_id", &message.return_id).map_err(invalid)?;
        if id.kind() != IdKind::Return {
            return Err(invalid(FieldError::new("return_id", "a return id starts with 'D'")));
        }
        if id.participant() != caller {
            return Err(Status::permission_denied(format!(
                "return_id: made by participant {}, but the caller is {caller}",
                id.participant()
            )));
        }
        let original =
            wire::end_to_end_id("original_end_to_end_id", &message.original_end_to_end_id).map_err(invalid)?;
        let amount = wire::amount_positive("amount", &message.amount).map_err(invalid)?;
        let reason: ReasonCode =
            message.reason.parse().ok().filter(|r: &ReasonCode| r.is_payee_reason()).ok_or_else(|| {
                invalid(FieldError::new("reason", "must be a return reason code such as MD06, FR01 or BE08"))
            })?;
        let order = ReturnOrder {
            returner: caller,
            id,
            original,
            amount,
            reason,
            remittance: remittance(&message.remittance)?,
        };
        let (tx, rx) = oneshot::channel();
        self.engine.try_send(Request::Return(op::Return(order), Waiter::Once(tx))).map_err(status_of)?;
        let outcome = rx
            .await
            .map_err(|_| Status::unavailable("the outcome was not delivered; query the status by return id"))?;
        Ok(Response::new(result_to_wire(&message.return_id, outcome)))
    }
}

/// `ponte.v1.Operator`: participant administration for the central bank.
#[derive(Debug, Clone)]
pub struct OperatorService {
    engine: EngineHandle,
}

impl OperatorService {
    pub fn new(engine: EngineHandle) -> OperatorService {
        OperatorService { engine }
    }

    /// Runs an operator operation that answers with a participant.
    async fn participant<O>(&self, operation: O) -> Result<Response<pb::Participant>, Status>
    where
        O: Operation<Result = Result<ParticipantView, AdminError>> + Send + 'static,
    {
        let view = self.engine.ask(operation).await.map_err(status_of)?.map_err(admin_status)?;
        Ok(Response::new(participant_to_wire(&view)))
    }
}

fn code(field: &'static str, text: &str) -> Result<ParticipantId, Status> {
    text.parse().map_err(|e| invalid(FieldError::new(field, e)))
}

fn cap(text: &str) -> Result<Amount, Status> {
    Amount::parse_non_negative(text).map_err(|e| invalid(FieldError::new("net_debit_cap", e)))
}

#[tonic::async_trait]
impl pb::operator_server::Operator for OperatorService {
    async fn register_participant(
        &self,
        request: GrpcRequest<pb::RegisterParticipantRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.into_inner();
        let command =
            op::RegisterParticipant { id: code("code", &m.code)?, name: m.name, net_debit_cap: cap(&m.net_debit_cap)? };
        self.participant(command).await
    }

    async fn set_limit(&self, request: GrpcRequest<pb::SetLimitRequest>) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.into_inner();
        self.participant(op::SetLimit { id: code("code", &m.code)?, net_debit_cap: cap(&m.net_debit_cap)? }).await
    }

    async fn set_participant_status(
        &self,
        request: GrpcRequest<pb::SetParticipantStatusRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.into_inner();
        let status = match pb::ParticipantStatus::try_from(m.status) {
            Ok(pb::ParticipantStatus::Active) => ParticipantStatus::Active,
            Ok(pb::ParticipantStatus::Suspended) => ParticipantStatus::Suspended,
            _ => {
                return Err(invalid(FieldError::new("status", "must be ACTIVE or SUSPENDED")));
            }
        };
        self.participant(op::SetStatus { id: code("code", &m.code)?, status }).await
    }

    async fn get_participant(
        &self,
        request: GrpcRequest<pb::GetParticipantRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let id = code("code", &request.get_ref().code)?;
        self.participant(op::GetParticipant { id }).await
    }

    async fn set_lookup_category(
        &self,
        request: GrpcRequest<pb::SetLookupCategoryRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.into_inner();
        let mut letters = m.category.chars();
        let category = match (letters.next(), letters.next()) {
            (Some(c), None) => c.to_ascii_uppercase(),
            _ => return Err(invalid(FieldError::new("category", "must be one letter from A to H"))),
        };
        self.participant(op::SetLookupCategory { id: code("code", &m.code)?, category }).await
    }

    async fn set_liquidity(
        &self,
        request: GrpcRequest<pb::SetLiquidityRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.get_ref();
        let liquidity = match pb::Liquidity::try_from(m.liquidity) {
            Ok(pb::Liquidity::NetDebitCap) => ponte_ledger::Liquidity::NetDebitCap,
            Ok(pb::Liquidity::Prefunded) => ponte_ledger::Liquidity::Prefunded,
            _ => return Err(invalid(FieldError::new("liquidity", "must be NET_DEBIT_CAP or PREFUNDED"))),
        };
        self.participant(op::SetLiquidity { id: code("code", &m.code)?, liquidity }).await
    }

    async fn move_funds(
        &self,
        request: GrpcRequest<pb::MoveFundsRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.get_ref();
        let id = code("code", &m.code)?;
        let amount = wire::amount_positive("amount", &m.amount).map_err(invalid)?;
        if m.withdraw {
            self.participant(op::FundsOut { id, amount }).await
        } else {
            self.participant(op::FundsIn { id, amount }).await
        }
    }

    async fn list_cycles(
        &self,
        request: GrpcRequest<pb::ListCyclesRequest>,
    ) -> Result<Response<pb::ListCyclesResponse>, Status> {
        require_operator(&request)?;
        let all = self.engine.ask(op::ListCycles).await.map_err(status_of)?;
        Ok(Response::new(pb::ListCyclesResponse { cycles: all.iter().map(cycle_to_wire).collect() }))
    }

    async fn close_cycle(
        &self,
        request: GrpcRequest<pb::CloseCycleRequest>,
    ) -> Result<Response<pb::CycleInfo>, Status> {
        require_operator(&request)?;
        let header = self.engine.ask(op::CloseCycle).await.map_err(status_of)?;
        Ok(Response::new(cycle_to_wire(&header)))
    }

    async fn confirm_cycle(
        &self,
        request: GrpcRequest<pb::ConfirmCycleRequest>,
    ) -> Result<Response<pb::CycleInfo>, Status> {
        require_operator(&request)?;
        let confirmed = self.engine.ask(op::ConfirmCycle { id: request.get_ref().id }).await.map_err(status_of)?;
        Ok(Response::new(cycle_to_wire(&confirmed.map_err(cycle_status)?)))
    }

    async fn cycle_report(
        &self,
        request: GrpcRequest<pb::CycleReportRequest>,
    ) -> Result<Response<pb::CycleReportResponse>, Status> {
        require_operator(&request)?;
        let m = request.get_ref();
        let format = pb::ReportFormat::try_from(m.format).unwrap_or(pb::ReportFormat::Json);
        let movements = self.engine.ask(op::CycleMovements { id: m.id }).await.map_err(status_of)?;
        let (header, movements) = movements.map_err(cycle_status)?;
        // Sorting, netting and hashing a large cycle takes seconds: on a
        // blocking thread, not the engine's and not a network worker.
        let built = tokio::task::spawn_blocking(move || {
            let report = ponte_settlement::report::build(header, movements)?;
            let content = match format {
                pb::ReportFormat::Csv => report.to_csv(),
                pb::ReportFormat::Camt053 => report.to_camt053(),
                pb::ReportFormat::Json | pb::ReportFormat::Unspecified => report.to_json(),
            };
            Ok((report.digest, content))
        })
        .await
        .map_err(|e| Status::internal(format!("report task: {e}")))?;
        let (digest_sha256, content) = built.map_err(|e| cycle_status(ponte_ledger::CycleError::Netting(e)))?;
        Ok(Response::new(pb::CycleReportResponse { id: m.id, digest_sha256, content }))
    }

    async fn list_participants(
        &self,
        request: GrpcRequest<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        require_operator(&request)?;
        let all = self.engine.ask(op::ListParticipants).await.map_err(status_of)?;
        let sum = all.iter().try_fold(Amount::ZERO, |acc, p| acc.checked_add(p.position));
        let sum = sum.ok_or_else(|| Status::internal("position sum overflows"))?;
        Ok(Response::new(pb::ListParticipantsResponse {
            participants: all.iter().map(participant_to_wire).collect(),
            position_sum: sum.to_string(),
        }))
    }
}

/// Reads an end user; the id must be a valid national id of its kind.
fn end_user(field: &'static str, user: &pb::EndUser) -> Result<EndUser, Status> {
    let kind = wire::owner_kind_from_wire(field, user.kind).map_err(invalid)?;
    let profile = ponte_directory::keys::Brazil;
    use ponte_directory::keys::CountryProfile;
    let id = match kind {
        OwnerKind::Person => profile.person_id(&user.id),
        OwnerKind::Business => profile.business_id(&user.id),
    }
    .map_err(|e| invalid(FieldError::new(field, format_args!("id: {e}"))))?;
    Ok(EndUser { kind, id })
}

/// The one mapping from directory errors to gRPC codes. Messages never
/// carry key values or personal data.
fn directory_status(error: DirectoryError) -> Status {
    let message = error.to_string();
    match error {
        DirectoryError::InvalidKey(_)
        | DirectoryError::InvalidOwnerId(_)
        | DirectoryError::OwnerIdMismatch
        | DirectoryError::OwnerName => Status::invalid_argument(message),
        DirectoryError::AccountElsewhere | DirectoryError::NotHolder => Status::permission_denied(message),
        DirectoryError::KeyExists => Status::already_exists(message),
        DirectoryError::NotFound => Status::not_found(message),
        DirectoryError::TooManyKeys { .. } => Status::failed_precondition(message),
    }
}

fn claim_status(error: ClaimError) -> Status {
    let message = error.to_string();
    match error {
        ClaimError::Directory(e) => directory_status(e),
        ClaimError::RandomKey | ClaimError::NationalIdOwnership | ClaimError::PortabilityOwner => {
            Status::invalid_argument(message)
        }
        ClaimError::AlreadyHeld | ClaimError::WrongStatus(_) => Status::failed_precondition(message),
        ClaimError::ClaimInProgress => Status::already_exists(message),
        ClaimError::UnknownClaim => Status::not_found(message),
        ClaimError::WrongParty(_) => Status::permission_denied(message),
    }
}

fn entry_to_wire(entry: &ponte_directory::registry::Entry) -> pb::KeyEntry {
    pb::KeyEntry {
        key: Some(wire::key_to_wire(&entry.key)),
        account: Some(account_to_wire(&entry.account)),
        owner: Some(wire::owner_to_wire(&entry.owner)),
        created_at_ms: entry.created_at,
    }
}

/// `ponte.v1.Directory`.
#[derive(Debug, Clone)]
pub struct DirectoryService {
    engine: EngineHandle,
}

impl DirectoryService {
    pub fn new(engine: EngineHandle) -> DirectoryService {
        DirectoryService { engine }
    }

    async fn ask<O>(&self, operation: O) -> Result<O::Result, Status>
    where
        O: Operation + Send + 'static,
        O::Result: Send + 'static,
    {
        self.engine.ask(operation).await.map_err(status_of)
    }

    /// Runs a key operation that answers with the key's entry.
    async fn key_reply<O>(&self, operation: O) -> Result<Response<pb::KeyEntry>, Status>
    where
        O: Operation<Result = Result<ponte_directory::registry::Entry, DirectoryError>> + Send + 'static,
    {
        let entry = self.ask(operation).await?.map_err(directory_status)?;
        Ok(Response::new(entry_to_wire(&entry)))
    }

    /// Runs a claim operation that answers with the claim.
    async fn claim_reply<O>(&self, operation: O) -> Result<Response<pb::ClaimInfo>, Status>
    where
        O: Operation<Result = Result<ponte_directory::claims::Claim, ClaimError>> + Send + 'static,
    {
        let claim = self.ask(operation).await?.map_err(claim_status)?;
        Ok(Response::new(wire::claim_to_wire(&claim)))
    }
}

#[tonic::async_trait]
impl pb::directory_server::Directory for DirectoryService {
    async fn register_key(
        &self,
        request: GrpcRequest<pb::RegisterKeyRequest>,
    ) -> Result<Response<pb::KeyEntry>, Status> {
        let caller = participant_of(&request)?;
        let m = request.into_inner();
        let kind = wire::key_type_from_wire("type", m.r#type).map_err(invalid)?;
        let key = if kind == KeyType::Random {
            if !m.value.is_empty() {
                return Err(invalid(FieldError::new(
                    "value",
                    "must be empty for a random key: the directory makes it",
                )));
            }
            NewKey::Random(rand::random())
        } else {
            NewKey::Chosen { kind, value: m.value }
        };
        let account = wire::account_from_wire("account", m.account.as_ref()).map_err(invalid)?;
        let owner = wire::owner_from_wire("owner", m.owner.as_ref()).map_err(invalid)?;
        self.key_reply(op::RegisterKey { caller, key, account, owner }).await
    }

    async fn delete_key(&self, request: GrpcRequest<pb::DeleteKeyRequest>) -> Result<Response<pb::KeyEntry>, Status> {
        let caller = participant_of(&request)?;
        let key = wire::key_from_wire("key", request.get_ref().key.as_ref()).map_err(invalid)?;
        self.key_reply(op::DeleteKey { caller, key }).await
    }

    async fn move_key(&self, request: GrpcRequest<pb::MoveKeyRequest>) -> Result<Response<pb::KeyEntry>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let key = wire::key_from_wire("key", m.key.as_ref()).map_err(invalid)?;
        let account = wire::account_from_wire("account", m.account.as_ref()).map_err(invalid)?;
        self.key_reply(op::MoveKey { caller, key, account }).await
    }

    async fn lookup_key(
        &self,
        request: GrpcRequest<pb::LookupKeyRequest>,
    ) -> Result<Response<pb::LookupKeyResponse>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let key = wire::key_from_wire("key", m.key.as_ref()).map_err(invalid)?;
        let user = m.end_user.as_ref().ok_or_else(|| invalid(FieldError::new("end_user", "is required")))?;
        let end_user = end_user("end_user", user)?;
        match self.ask(op::LookupKey { caller, end_user, key }).await? {
            Ok(view) => Ok(Response::new(pb::LookupKeyResponse {
                key: Some(wire::key_to_wire(&view.key)),
                account: Some(account_to_wire(&view.account)),
                owner_kind: wire::owner_kind_to_wire(view.owner_kind) as i32,
                owner_name_masked: view.owner_name_masked,
                owner_id_masked: view.owner_id_masked,
            })),
            Err(error) => {
                let message = error.to_string();
                Err(match error {
                    LookupError::NotFound => Status::not_found(message),
                    LookupError::UserLimited { retry_after_ms }
                    | LookupError::ParticipantLimited { retry_after_ms } => {
                        let mut status = Status::resource_exhausted(message);
                        if let Ok(value) = retry_after_ms.to_string().parse() {
                            status.metadata_mut().insert("retry-after-ms", value);
                        }
                        status
                    }
                    LookupError::EndUser(_) => Status::invalid_argument(message),
                })
            }
        }
    }

    async fn list_keys(
        &self,
        request: GrpcRequest<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let caller = participant_of(&request)?;
        let keys = self.ask(op::ListKeys { caller }).await?;
        Ok(Response::new(pb::ListKeysResponse {
            entries: keys.entries.iter().map(entry_to_wire).collect(),
            digest: format!("{:016x}", keys.digest),
        }))
    }

    async fn open_claim(&self, request: GrpcRequest<pb::OpenClaimRequest>) -> Result<Response<pb::ClaimInfo>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let kind = wire::claim_kind_from_wire(m.kind).map_err(invalid)?;
        let key = wire::key_from_wire("key", m.key.as_ref()).map_err(invalid)?;
        let account = wire::account_from_wire("account", m.account.as_ref()).map_err(invalid)?;
        let owner = wire::owner_from_wire("owner", m.owner.as_ref()).map_err(invalid)?;
        self.claim_reply(op::OpenClaim { caller, kind, key, account, owner }).await
    }

    async fn act_on_claim(
        &self,
        request: GrpcRequest<pb::ActOnClaimRequest>,
    ) -> Result<Response<pb::ClaimInfo>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let action = wire::claim_action_from_wire(m.action).map_err(invalid)?;
        self.claim_reply(op::ActOnClaim { caller, id: m.claim_id, action }).await
    }

    async fn list_claims(
        &self,
        request: GrpcRequest<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let caller = participant_of(&request)?;
        let claims = self.ask(op::ListClaims { caller }).await?;
        Ok(Response::new(pb::ListClaimsResponse { claims: claims.iter().map(wire::claim_to_wire).collect() }))
    }
}

fn cycle_to_wire(header: &ponte_settlement::report::CycleHeader) -> pb::CycleInfo {
    use ponte_settlement::report::CycleStatus;
    pb::CycleInfo {
        id: header.id,
        status: match header.status {
            CycleStatus::Open => pb::CycleStatus::Open,
            CycleStatus::Closed => pb::CycleStatus::Closed,
            CycleStatus::Settled => pb::CycleStatus::Settled,
        } as i32,
        opened_at_ms: header.opened_at,
        closed_at_ms: header.closed_at.unwrap_or(0),
        settled_at_ms: header.settled_at.unwrap_or(0),
    }
}

fn cycle_status(error: ponte_ledger::CycleError) -> Status {
    use ponte_ledger::CycleError;
    let message = error.to_string();
    match error {
        CycleError::Unknown(_) => Status::not_found(message),
        CycleError::NotClosed(..) => Status::failed_precondition(message),
        CycleError::Netting(_) => Status::internal(message),
    }
}
