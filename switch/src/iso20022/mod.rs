//! The ISO 20022 gateway: participants that speak ISO 20022 XML instead of
//! gRPC, over HTTPS with the same mTLS identities and the same rules (a
//! bank acts only as itself). docs/ISO20022.md describes the flows.
//!
//! - `POST /iso20022/v1/messages` takes one document:
//!   - pacs.008: payments. They enter the engine exactly as gRPC ones do;
//!     the answer is a pacs.002 with each one's outcome (ACSC settled, or
//!     RJCT with the ISO reason code), in the document's order.
//!   - pacs.002 from a payee: its answers (ACCP/ACSP accept, RJCT refuses
//!     with a reason). All or nothing: one bad answer refuses the document.
//!   - pacs.004: returns; the answer is a pacs.002 with each one's outcome.
//!   - pacs.028: status requests; the answer is a pacs.002 with each
//!     transaction's status (ACSC, RJCT, PDNG, or unknown).
//!   - camt.056: recalls of settled payments the caller sent, as gRPC
//!     `Recall`; the answer is a camt.029 with each recall's status (PDCR
//!     sent on, RJCR refused with its reason, ACCR already accepted).
//!   - camt.029 from a payee's participant: its refusals of recalls (RJCR
//!     with a reason). All read before any is taken.
//! - `GET /iso20022/v1/statements/{cycle}`: the caller's camt.053
//!   statement of a cycle (its own position, the whole cycle's digest).
//! - `GET /iso20022/v1/inbox` is the payee's long-lived channel: a
//!   streaming response (HTTP/1.1 chunked or one HTTP/2 stream), one whole
//!   document per line: pacs.008 payments to answer before their
//!   `SttlmTmReq/RjctTm`, camt.054 credit notifications once settled,
//!   pacs.002 RJCT when a payment is not going ahead, pacs.004 for settled
//!   returns of the participant's payments, camt.056 for recalls to answer,
//!   camt.029 for how the participant's own recalls closed. An empty line every
//!   [`HEARTBEAT`] keeps idle connections open.
//!
//! A document that cannot be read gets an HTTP error with a plain-text
//! reason and executes nothing: 400 (malformed, schema, namespace), 413
//! (over [`ponte_iso20022::DOCUMENT_BYTES_MAX`]), 415 (not XML), 403 (a
//! participant acting as another, or the operator's certificate). A
//! transaction the switch refuses gets RJCT with an ISO code in the pacs.002.

pub mod convert;
mod recalls;

use crate::grpc::ServiceConfig;
use crate::grpc::payments::{give_back, in_pieces, payment_order};
use crate::net::tls::Caller;
use crate::runtime::{EngineHandle, InboxChange, Request, SubmitError, Waiter};
use bytes::Bytes;
use convert::Refusal;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, StatusCode, header};
use ponte_domain::{EndToEndId, IdKind, ParticipantId, TransferState};
use ponte_iso20022::model::*;
use ponte_iso20022::{DOCUMENT_BYTES_MAX, DocumentError, Inbound, MessageKind};
use ponte_ledger::{Effect, Outcome, op};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

pub const MESSAGES_PATH: &str = "/iso20022/v1/messages";
pub const INBOX_PATH: &str = "/iso20022/v1/inbox";
/// `GET` plus a cycle number: the caller's camt.053 statement of that cycle.
pub const STATEMENTS_PATH: &str = "/iso20022/v1/statements/";
/// How often an idle inbox stream carries an empty line.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// Longest an HTTP/1.1 client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Most HTTP/2 streams at once on one gateway connection.
const STREAMS_PER_CONNECTION_MAX: u32 = 1_024;

type Body = BoxBody<Bytes, std::io::Error>;

/// The gateway's state: the engine and the bounds it shares with gRPC.
#[derive(Clone)]
pub struct Gateway {
    engine: EngineHandle,
    config: Arc<ServiceConfig>,
    messages: Arc<AtomicU64>,
}

impl Gateway {
    pub fn new(engine: EngineHandle, config: ServiceConfig) -> Gateway {
        Gateway { engine, config: Arc::new(config), messages: Arc::new(AtomicU64::new(0)) }
    }

    /// Serves the gateway on `listener` until `stop` fires.
    pub fn spawn(
        self,
        listener: tokio::net::TcpListener,
        tls: Arc<crate::net::acceptor::Tls>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut incoming = crate::net::acceptor::incoming_http(listener, tls);
            loop {
                let connection = tokio::select! {
                    connection = incoming.next() => match connection {
                        Some(Ok(connection)) => connection,
                        Some(Err(_)) => continue,
                        None => return,
                    },
                    _ = stop.changed() => return,
                };
                let caller = connection.caller();
                let gateway = self.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let gateway = gateway.clone();
                        let caller = caller.clone();
                        async move { Ok::<_, Infallible>(gateway.handle(caller, request).await) }
                    });
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    builder.http2().max_concurrent_streams(STREAMS_PER_CONNECTION_MAX);
                    // A client that never finishes its request headers is cut.
                    builder
                        .http1()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Some(HEADER_READ_TIMEOUT));
                    let io = hyper_util::rt::TokioIo::new(connection);
                    if let Err(error) = builder.serve_connection(io, service).await {
                        tracing::debug!(%error, "ISO 20022 gateway connection ended");
                    }
                });
            }
        })
    }

    async fn handle(self, caller: Result<Caller, String>, request: hyper::Request<Incoming>) -> hyper::Response<Body> {
        let participant = match caller {
            Ok(Caller::Participant(id)) => id,
            Ok(Caller::Operator) => {
                return text(
                    StatusCode::FORBIDDEN,
                    "the ISO 20022 gateway is for participants; the operator certificate cannot use it",
                );
            }
            Err(why) => return text(StatusCode::FORBIDDEN, why),
        };
        let path = request.uri().path().to_owned();
        match (request.method(), path.as_str()) {
            (&Method::POST, MESSAGES_PATH) => self.message(participant, request).await,
            (&Method::GET, INBOX_PATH) => self.inbox(participant).await,
            (&Method::GET, path) if path.starts_with(STATEMENTS_PATH) => {
                self.statement(participant, &path[STATEMENTS_PATH.len()..]).await
            }
            (_, MESSAGES_PATH) => not_allowed("POST"),
            (_, INBOX_PATH) => not_allowed("GET"),
            _ => text(
                StatusCode::NOT_FOUND,
                format!(
                    "no such path {:?}: POST ISO 20022 documents to {MESSAGES_PATH}; GET {INBOX_PATH} for those sent \
                     to you",
                    path.chars().take(64).collect::<String>()
                ),
            ),
        }
    }

    async fn message(self, participant: ParticipantId, request: hyper::Request<Incoming>) -> hyper::Response<Body> {
        if let Some(kind) = request.headers().get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
            if !(kind.starts_with("application/xml") || kind.starts_with("text/xml")) {
                return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send ISO 20022 documents as application/xml");
            }
        }
        let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        if declared.is_some_and(|length: usize| length > DOCUMENT_BYTES_MAX) {
            return too_large();
        }
        let bytes = match Limited::new(request.into_body(), DOCUMENT_BYTES_MAX).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(error) => return text(StatusCode::BAD_REQUEST, format!("the request body could not be read: {error}")),
        };
        let inbound = match ponte_iso20022::read(&bytes) {
            Ok(inbound) => inbound,
            Err(DocumentError::TooLarge) => return too_large(),
            Err(error) => {
                metrics::counter!("ponte_iso20022_documents_refused_total").increment(1);
                return text(StatusCode::BAD_REQUEST, error);
            }
        };
        metrics::counter!("ponte_iso20022_documents_total", "message" => inbound.kind().name()).increment(1);
        let pacs002 = |report: StatusReport| ponte_iso20022::write_pacs002(&report);
        let answered = match inbound {
            Inbound::CreditTransfer(message) => self.credit_transfer(participant, message).await.map(pacs002),
            Inbound::StatusReport(message) => return self.answers(participant, message).await,
            Inbound::Return(message) => self.returns(participant, message).await.map(pacs002),
            Inbound::StatusRequest(message) => self.status(participant, message).await.map(pacs002),
            Inbound::CancellationRequest(message) => {
                self.recalls(participant, message).await.map(|answer| ponte_iso20022::write_camt029(&answer))
            }
            Inbound::Resolution(message) => return self.refusals(participant, message).await,
        };
        match answered {
            Ok(document) => xml(document),
            Err((status, why)) => text(status, why),
        }
    }

    fn header(&self) -> Header {
        let now = now_ms();
        let n = self.messages.fetch_add(1, Ordering::Relaxed);
        Header { MsgId: format!("PONTE{now}{n:08}"), CreDtTm: convert::date_time(now), ..Default::default() }
    }

    fn batch_header(&self, count: usize) -> BatchHeader {
        let Header { MsgId, CreDtTm, .. } = self.header();
        BatchHeader {
            MsgId,
            CreDtTm,
            NbOfTxs: count.to_string(),
            SttlmInf: SttlmInf { SttlmMtd: "CLRG".into() },
            ..Default::default()
        }
    }

    fn report(&self, original: &str, kind: MessageKind, statuses: Vec<TxStatus>) -> StatusReport {
        let settled = statuses.iter().filter(|s| s.TxSts.as_deref() == Some("ACSC")).count();
        let group = if settled == statuses.len() {
            "ACSC"
        } else if statuses.iter().all(|s| s.TxSts.as_deref() == Some("RJCT")) {
            "RJCT"
        } else {
            "PART"
        };
        StatusReport {
            GrpHdr: self.header(),
            OrgnlGrpInfAndSts: Some(OriginalGroupStatus {
                OrgnlMsgId: original.chars().take(35).collect(),
                OrgnlMsgNmId: kind.name().into(),
                OrgnlNbOfTxs: Some(statuses.len().to_string()),
                GrpSts: (kind != MessageKind::Pacs028).then(|| group.into()),
            }),
            TxInfAndSts: statuses,
        }
    }

    /// pacs.008: every transaction read, checked and sent to the engine as
    /// a gRPC payment is; the answer waits for all their outcomes.
    async fn credit_transfer(
        &self,
        caller: ParticipantId,
        message: CreditTransfer,
    ) -> Result<StatusReport, (StatusCode, String)> {
        group_header(&message.GrpHdr, message.CdtTrfTxInf.len())?;
        acting_as(caller, message.CdtTrfTxInf.iter().map(|tx| convert::agent_code(&tx.DbtrAgt)), "DbtrAgt")?;
        let country = self.engine.engine_config().country;
        let count = message.CdtTrfTxInf.len();
        let mut statuses: Vec<Option<TxStatus>> = vec![None; count];
        let mut waiting: HashMap<EndToEndId, usize> = HashMap::with_capacity(count);
        let (outcomes_tx, mut outcomes) = mpsc::channel(count.max(1));
        for (at, tx) in message.CdtTrfTxInf.iter().enumerate() {
            let id = &tx.PmtId.EndToEndId;
            let order = convert::payment_request(tx)
                .and_then(|request| payment_order(country, caller, &request).map_err(|s| Refusal::of_status(&s)));
            let order = match order {
                Ok(order) => order,
                Err(refusal) => {
                    statuses[at] = Some(convert::refused_status(id, refusal.code, &refusal.text));
                    continue;
                }
            };
            if waiting.contains_key(&order.id) {
                statuses[at] = Some(convert::refused_status(id, "AM05", "the same EndToEndId twice in one document"));
                continue;
            }
            waiting.insert(order.id, at);
            let submit = Request::Submit(op::Submit(order), Waiter::Stream(outcomes_tx.clone()));
            if let Err(error) = self.engine.send(submit).await {
                return Err(unavailable(error));
            }
        }
        drop(outcomes_tx);
        while !waiting.is_empty() {
            let Some((id, outcome)) = outcomes.recv().await else {
                return Err(unavailable(SubmitError::Stopped));
            };
            if let Some(at) = waiting.remove(&id) {
                statuses[at] = Some(convert::outcome_status(id.as_str(), &outcome));
            }
        }
        let statuses = statuses.into_iter().map(|s| s.expect("every transaction has a status")).collect();
        Ok(self.report(&message.GrpHdr.MsgId, MessageKind::Pacs008, statuses))
    }

    /// pacs.002 from a payee: its answers, all read before any is taken.
    async fn answers(&self, caller: ParticipantId, message: StatusReport) -> hyper::Response<Body> {
        if let Err((status, why)) = message_id(&message.GrpHdr.MsgId) {
            return text(status, why);
        }
        let mut decisions = Vec::with_capacity(message.TxInfAndSts.len());
        let mut errors = Vec::new();
        for tx in &message.TxInfAndSts {
            match convert::decision(tx) {
                Ok(decision) => decisions.push(decision),
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            self.engine.stats_arc().answers_refused.fetch_add(errors.len() as u64, Ordering::Relaxed);
            return text(StatusCode::BAD_REQUEST, listed("no answer of this pacs.002 was taken", &errors));
        }
        for (id, decision) in decisions {
            if let Err(error) = self.engine.send(Request::Answer(op::Answer { payee: caller, id, decision })).await {
                let (status, why) = unavailable(error);
                return text(status, why);
            }
        }
        hyper::Response::builder().status(StatusCode::ACCEPTED).body(full(Bytes::new())).expect("a valid response")
    }

    /// pacs.004: each return checked and executed as a gRPC `Return` is.
    async fn returns(
        &self,
        caller: ParticipantId,
        message: PaymentReturn,
    ) -> Result<StatusReport, (StatusCode, String)> {
        group_header(&message.GrpHdr, message.TxInf.len())?;
        let mut statuses = Vec::with_capacity(message.TxInf.len());
        for tx in &message.TxInf {
            let original = tx.OrgnlEndToEndId.clone().unwrap_or_default();
            let request = match convert::return_request(tx) {
                Ok(request) => request,
                Err(refusal) => {
                    statuses.push(TxStatus { OrgnlTxId: tx.RtrId.clone(), ..refused(&original, &refusal) });
                    continue;
                }
            };
            let status = match give_back(&self.engine, caller, request).await {
                Ok(result) if result.status == ponte_proto::v1::PaymentStatus::Settled as i32 => {
                    convert::outcome_status(&original, &Outcome::Settled { at: result.settled_at_ms })
                }
                Ok(result) => {
                    let reason = result.reason.and_then(|r| r.code.parse().ok());
                    let reason = reason.unwrap_or(ponte_domain::ReasonCode::OriginalNotFound);
                    convert::outcome_status(&original, &Outcome::Rejected { reason })
                }
                Err(status) if status.code() == tonic::Code::PermissionDenied => {
                    return Err((StatusCode::FORBIDDEN, status.message().to_owned()));
                }
                Err(status) => refused(&original, &Refusal::of_status(&status)),
            };
            statuses.push(TxStatus { OrgnlTxId: tx.RtrId.clone(), ..status });
        }
        Ok(self.report(&message.GrpHdr.MsgId, MessageKind::Pacs004, statuses))
    }

    /// pacs.028: the status of each transaction asked about, as its side sees it.
    async fn status(
        &self,
        caller: ParticipantId,
        message: StatusRequest,
    ) -> Result<StatusReport, (StatusCode, String)> {
        message_id(&message.GrpHdr.MsgId)?;
        let mut statuses = Vec::with_capacity(message.TxInf.len());
        for tx in &message.TxInf {
            let asked = tx.OrgnlEndToEndId.as_deref().unwrap_or_default();
            let id = match EndToEndId::parse(asked) {
                Ok(id) => id,
                Err(error) => {
                    statuses.push(TxStatus {
                        StsId: tx.StsReqId.clone(),
                        ..convert::refused_status(asked, "FF08", &format!("OrgnlEndToEndId: {error}"))
                    });
                    continue;
                }
            };
            let view = crate::grpc::archived::status(&self.engine, caller, id)
                .await
                .map_err(|status| (StatusCode::SERVICE_UNAVAILABLE, status.message().to_owned()))?;
            let status = match view {
                Some(view) => match (view.state, view.settled_at, view.reason) {
                    (TransferState::Settled, Some(at), _) => convert::outcome_status(asked, &Outcome::Settled { at }),
                    (TransferState::Rejected, _, Some(reason)) => {
                        convert::outcome_status(asked, &Outcome::Rejected { reason })
                    }
                    _ => TxStatus {
                        OrgnlEndToEndId: Some(asked.to_owned()),
                        TxSts: Some("PDNG".into()),
                        ..Default::default()
                    },
                },
                None => TxStatus {
                    OrgnlEndToEndId: Some(asked.to_owned()),
                    StsRsnInf: vec![StatusReason {
                        Rsn: Some(CodeOrProprietary::proprietary("NOTFOUND")),
                        AddtlInf: convert::additional_info(&format!(
                            "no payment or return {id} sent or received by participant {caller} (kept {} days)",
                            crate::grpc::archived::retention_days(&self.engine)
                        )),
                    }],
                    ..Default::default()
                },
            };
            let is_return = id.kind() == IdKind::Return;
            statuses.push(TxStatus {
                StsId: tx.StsReqId.clone(),
                OrgnlTxId: is_return.then(|| id.to_string()),
                ..status
            });
        }
        Ok(self.report(&message.GrpHdr.MsgId, MessageKind::Pacs028, statuses))
    }

    /// The caller's camt.053 statement of a cycle: its own `Stmt` (opening
    /// balance zero, closing balance its net position), with the digest of
    /// the whole cycle's report.
    async fn statement(&self, caller: ParticipantId, cycle: &str) -> hyper::Response<Body> {
        let Ok(cycle) = cycle.parse::<u64>() else {
            return text(StatusCode::BAD_REQUEST, format!("{STATEMENTS_PATH}N: N is a cycle number"));
        };
        let (header, movements) = match crate::grpc::archived::cycle_movements(&self.engine, cycle).await {
            Ok(found) => found,
            Err(status) if status.code() == tonic::Code::NotFound => {
                return text(StatusCode::NOT_FOUND, status.message());
            }
            Err(status) => return text(StatusCode::SERVICE_UNAVAILABLE, status.message()),
        };
        let built = tokio::task::spawn_blocking(move || {
            ponte_settlement::report::build(header, movements).map(|report| report.to_camt053_for(caller))
        })
        .await;
        match built {
            Ok(Ok(document)) => xml(document),
            Ok(Err(error)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("the cycle's report: {error}")),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "the cycle's report could not be built"),
        }
    }

    /// The payee's channel: the engine's inbox frames as ISO documents,
    /// one per line.
    async fn inbox(self, caller: ParticipantId) -> hyper::Response<Body> {
        match self.engine.ask(op::GetParticipant { id: caller }).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                return text(StatusCode::FORBIDDEN, format!("participant {caller} is not registered at this switch"));
            }
            Err(error) => {
                let (status, why) = unavailable(error);
                return text(status, why);
            }
        }
        let stream = self.engine.next_stream_id();
        let (frames_tx, frames_rx) = mpsc::channel(self.config.inbox_queue_max);
        let opened = InboxChange::Opened { participant: caller, stream, frames: frames_tx };
        if let Err(error) = self.engine.send(Request::Inbox(opened)).await {
            let (status, why) = unavailable(error);
            return text(status, why);
        }
        let open = OpenInbox { engine: self.engine.clone(), participant: caller, stream };
        let pieces = self.config.answers_batch_max;
        let stats = self.engine.stats_arc();
        let documents = futures::StreamExt::flat_map(
            tokio_stream::wrappers::ReceiverStream::new(frames_rx),
            move |effects: Vec<Effect>| {
                let gateway = self.clone();
                let stats = stats.clone();
                futures::stream::iter(in_pieces(effects, pieces).into_iter().map(move |piece| {
                    stats.streams.inbox.count(piece.len());
                    Ok::<_, std::io::Error>(Frame::data(Bytes::from(gateway.documents(caller, piece))))
                }))
            },
        );
        // An empty line after each quiet HEARTBEAT; the body ends with the
        // engine's frames, and the inbox closes when the client goes away
        // (the state, with `open`, is dropped).
        let body = futures::stream::unfold((Box::pin(documents), open), |(mut documents, open)| async move {
            match tokio::time::timeout(HEARTBEAT, documents.next()).await {
                Ok(Some(frame)) => Some((frame, (documents, open))),
                Ok(None) => None,
                Err(_quiet) => Some((Ok(Frame::data(Bytes::from_static(b"\n"))), (documents, open))),
            }
        });
        hyper::Response::builder()
            .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
            .header("x-ponte-framing", "one document per line")
            .body(BoxBody::new(StreamBody::new(body)))
            .expect("a valid response")
    }

    /// Inbox effects as documents, one per line; consecutive effects of one
    /// kind share a document, so order is kept.
    fn documents(&self, caller: ParticipantId, effects: Vec<Effect>) -> String {
        let now = now_ms();
        let mut out = String::with_capacity(effects.len() * 1_024);
        let mut payments = Vec::new();
        let mut credits = Vec::new();
        let mut cancelled = Vec::new();
        let mut returns = Vec::new();
        let mut recalls = Vec::new();
        let flush = |out: &mut String,
                     payments: &mut Vec<CreditTransferTx>,
                     credits: &mut Vec<Entry>,
                     cancelled: &mut Vec<TxStatus>,
                     returns: &mut Vec<ReturnTx>,
                     recalls: &mut Vec<ponte_ledger::Recall>| {
            if !payments.is_empty() {
                let message =
                    CreditTransfer { GrpHdr: self.batch_header(payments.len()), CdtTrfTxInf: std::mem::take(payments) };
                ponte_iso20022::write_pacs008_into(&message, out);
                out.push('\n');
            }
            if !credits.is_empty() {
                let header = self.header();
                let message = Notification {
                    Ntfctn: vec![AccountNotification {
                        Id: header.MsgId.clone(),
                        CreDtTm: None,
                        Acct: NotificationAccount {
                            Id: AccountId { Othr: GenericAccountId { Id: caller.to_string(), Issr: None } },
                            Ccy: Some(ponte_domain::CURRENCY.into()),
                        },
                        Ntry: std::mem::take(credits),
                    }],
                    GrpHdr: header,
                };
                ponte_iso20022::write_camt054_into(&message, out);
                out.push('\n');
            }
            if !cancelled.is_empty() {
                let message = StatusReport {
                    GrpHdr: self.header(),
                    OrgnlGrpInfAndSts: None,
                    TxInfAndSts: std::mem::take(cancelled),
                };
                ponte_iso20022::write_pacs002_into(&message, out);
                out.push('\n');
            }
            if !returns.is_empty() {
                let message =
                    PaymentReturn { GrpHdr: self.batch_header(returns.len()), TxInf: std::mem::take(returns) };
                ponte_iso20022::write_pacs004_into(&message, out);
                out.push('\n');
            }
            // Recalls one document each: a camt.056 to answer, or a
            // camt.029 saying how the participant's recall closed.
            for recall in recalls.drain(..) {
                let (from, to) = (recall.requester, recall.responder);
                if recall.is_open() {
                    let message = CancellationRequest {
                        Assgnmt: self.assignment(from, to),
                        Undrlyg: vec![Underlying { TxInf: vec![convert::recall_tx(&recall)] }],
                        ..Default::default()
                    };
                    ponte_iso20022::write_camt056_into(&message, out);
                } else {
                    let message = self.resolution(from, to, vec![convert::recall_status(&recall)]);
                    ponte_iso20022::write_camt029_into(&message, out);
                }
                out.push('\n');
            }
        };
        let mut last = None;
        for effect in effects {
            let kind = std::mem::discriminant(&effect);
            if last.is_some_and(|last| last != kind) {
                flush(&mut out, &mut payments, &mut credits, &mut cancelled, &mut returns, &mut recalls);
            }
            last = Some(kind);
            match effect {
                Effect::Deliver(delivery) => payments.push(convert::delivery(&delivery, now)),
                Effect::Settled { id, amount, at, .. } => credits.push(convert::credit_entry(&id, amount, at, "DMCT")),
                Effect::Cancelled { id, reason, .. } => {
                    cancelled.push(convert::outcome_status(id.as_str(), &Outcome::Rejected { reason }))
                }
                Effect::Returned(notice) => returns.push(convert::returned(&notice)),
                Effect::Recall(recall) => recalls.push(*recall),
            }
        }
        flush(&mut out, &mut payments, &mut credits, &mut cancelled, &mut returns, &mut recalls);
        out
    }
}

/// An open inbox; dropping it (the client went away) tells the engine.
struct OpenInbox {
    engine: EngineHandle,
    participant: ParticipantId,
    stream: u64,
}

impl Drop for OpenInbox {
    fn drop(&mut self) {
        let closed = Request::Inbox(InboxChange::Closed { participant: self.participant, stream: self.stream });
        let engine = self.engine.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = engine.send(closed).await;
            });
        }
    }
}

/// `what`, then the first 20 `errors`, one per line.
fn listed(what: &str, errors: &[String]) -> String {
    let shown = errors.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
    let more = if errors.len() > 20 { format!("\n(and {} more)", errors.len() - 20) } else { String::new() };
    format!("{what}; {} cannot be:\n{shown}{more}", errors.len())
}

fn refused(id: &str, refusal: &Refusal) -> TxStatus {
    convert::refused_status(id, refusal.code, &refusal.text)
}

/// Checks a group header: message id, and the count it declares.
fn group_header(header: &BatchHeader, count: usize) -> Result<(), (StatusCode, String)> {
    message_id(&header.MsgId)?;
    if header.NbOfTxs.parse::<usize>().ok() != Some(count) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "GrpHdr/NbOfTxs says {:?}, the document holds {count}",
                header.NbOfTxs.chars().take(15).collect::<String>()
            ),
        ));
    }
    if header.SttlmInf.SttlmMtd != "CLRG" {
        return Err((StatusCode::BAD_REQUEST, "GrpHdr/SttlmInf/SttlmMtd: CLRG (settled by the switch)".into()));
    }
    Ok(())
}

fn message_id(id: &str) -> Result<(), (StatusCode, String)> {
    if id.is_empty() || id.chars().count() > 35 {
        return Err((StatusCode::BAD_REQUEST, "GrpHdr/MsgId: 1 to 35 characters".into()));
    }
    Ok(())
}

/// A bank acts only as itself: every agent named must be the caller.
fn acting_as<'a>(
    caller: ParticipantId,
    agents: impl Iterator<Item = Option<&'a str>>,
    what: &str,
) -> Result<(), (StatusCode, String)> {
    let code = caller.to_string();
    for (n, agent) in agents.enumerate() {
        if agent != Some(code.as_str()) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "transaction {}: {what}/FinInstnId/ClrSysMmbId/MmbId is {:?}, but the caller is participant {caller}; \
                     nothing in this document was executed",
                    n + 1,
                    agent.unwrap_or_default().chars().take(35).collect::<String>()
                ),
            ));
        }
    }
    Ok(())
}

fn unavailable(error: SubmitError) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A whole body.
fn full(bytes: impl Into<Bytes>) -> Body {
    BoxBody::new(Full::new(bytes.into()).map_err(|never: Infallible| match never {}))
}

fn xml(document: String) -> hyper::Response<Body> {
    hyper::Response::builder()
        .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
        .body(full(document))
        .expect("a valid response")
}

fn text(status: StatusCode, message: impl std::fmt::Display) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(format!("{message}\n")))
        .expect("a valid response")
}

fn too_large() -> hyper::Response<Body> {
    text(StatusCode::PAYLOAD_TOO_LARGE, format!("a document holds at most {DOCUMENT_BYTES_MAX} bytes"))
}

fn not_allowed(allowed: &'static str) -> hyper::Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allowed} here"));
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allowed));
    response
}
