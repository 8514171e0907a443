//! `ponte.v1.Disbursements`: envelopes from government paying agencies.
//!
//! An upload is read whole (bounded: the header's control count, at most
//! [`ENVELOPE_ITEMS_MAX`] items and [`UPLOAD_MESSAGE_ITEMS_MAX`] per
//! message), every item checked, the control totals and the uniqueness of
//! disbursement ids verified and the content hashed on a blocking thread;
//! only then is it handed to the engine, in chunks of
//! [`ENVELOPE_CHUNK_ITEMS_MAX`] so retail payments keep flowing between
//! them, and sealed. A refused envelope leaves nothing to pay.

use super::status::to_status;
use crate::net::tls::{Caller, caller_of, participant_of};
use crate::runtime::EngineHandle;
use ponte_directory::keys::Country;
use ponte_domain::{Amount, ParticipantId};
use ponte_ledger::op::{self, Operation};
use ponte_ledger::{
    ENVELOPE_CHUNK_ITEMS_MAX, ENVELOPE_ITEMS_MAX, EnvelopeError, EnvelopeHeader, EnvelopeItem, EnvelopeView,
    ITEMS_PAGE_MAX, ItemOutcome, ItemView, check_item,
};
use ponte_proto::v1 as pb;
use ponte_wire as wire;
use std::collections::HashSet;
use tonic::{Request as GrpcRequest, Response, Status, Streaming};

/// Most items in one upload message.
pub const UPLOAD_MESSAGE_ITEMS_MAX: usize = 10_000;

pub struct DisbursementService {
    engine: EngineHandle,
}

impl DisbursementService {
    pub fn new(engine: EngineHandle) -> DisbursementService {
        DisbursementService { engine }
    }

    /// Runs an operation, waiting for room in the engine's queue: an
    /// upload already read is worth finishing, and the wait is its
    /// backpressure.
    async fn run<O>(&self, operation: O) -> Result<O::Result, Status>
    where
        O: Operation + Send + 'static,
        O::Result: Send + 'static,
    {
        self.engine.ask_waiting(operation).await.map_err(to_status)
    }

    /// Runs an envelope operation that answers with the envelope.
    async fn envelope<O>(&self, operation: O) -> Result<EnvelopeView, Status>
    where
        O: Operation<Result = Result<EnvelopeView, EnvelopeError>> + Send + 'static,
    {
        self.run(operation).await?.map_err(to_status)
    }
}

/// Parses and checks one uploaded item (`index` names it in errors).
pub fn item_from_wire(country: Country, index: usize, m: &pb::DisbursementItem) -> Result<EnvelopeItem, Status> {
    let item =
        wire::item_from_wire(&country, m).map_err(|e| super::status::invalid("items", format!("item {index}: {e}")))?;
    check_item(&item).map_err(|reason| super::status::invalid("items", format!("item {index}: {reason}")))?;
    Ok(item)
}

fn status_to_wire(v: &EnvelopeView) -> pb::EnvelopeStatus {
    pb::EnvelopeStatus {
        agency: v.header.agency.to_string(),
        header: Some(wire::header_to_wire(&v.header)),
        received: v.received,
        paid_count: v.paid_count,
        paid_value: v.paid_value.to_string(),
        failed_count: v.failed_count,
        failed_value: v.failed_value.to_string(),
        in_progress: v.in_progress,
        sealed: v.sealed_at.is_some(),
        complete: v.complete,
        opened_at_ms: v.opened_at,
        sealed_at_ms: v.sealed_at.unwrap_or(0),
        digest: format!("{:032x}", v.digest),
    }
}

fn outcome_to_wire(v: &ItemView) -> pb::EnvelopeItemOutcome {
    let (state, id, reason, settled_at_ms) = match v.outcome {
        ItemOutcome::Waiting => (pb::ItemState::Waiting, None, None, 0),
        ItemOutcome::InProgress { id } => (pb::ItemState::InProgress, Some(id), None, 0),
        ItemOutcome::Paid { id, at } => (pb::ItemState::Paid, Some(id), None, at),
        ItemOutcome::Failed { reason, id } => (pb::ItemState::Failed, id, Some(wire::reason_to_wire(reason)), 0),
    };
    pb::EnvelopeItemOutcome {
        index: v.index,
        item: Some(wire::item_to_wire(&v.item)),
        state: state as i32,
        end_to_end_id: id.map(|id| id.to_string()).unwrap_or_default(),
        reason,
        payee: v.payee.as_ref().map(wire::account_to_wire),
        settled_at_ms,
    }
}

/// Checks what the engine would refuse anyway before it sees a single
/// item, and hashes the content (`ponte_disbursement::digest`, specified
/// byte for byte in the .proto).
fn check_and_digest(header: &EnvelopeHeader, items: &[EnvelopeItem]) -> Result<u128, EnvelopeError> {
    let found = u32::try_from(items.len()).unwrap_or(u32::MAX);
    if found != header.control_count {
        return Err(EnvelopeError::ControlCountMismatch { expected: header.control_count, found });
    }
    let mut total = Amount::ZERO;
    let mut ids = HashSet::with_capacity(items.len());
    for item in items {
        total = total.checked_add(item.amount).unwrap_or(Amount::MAX);
        if !ids.insert(item.disbursement_id.as_str()) {
            return Err(EnvelopeError::RepeatedDisbursementId(item.disbursement_id.clone()));
        }
    }
    if total != header.control_total {
        return Err(EnvelopeError::ControlTotalMismatch { expected: header.control_total, found: total });
    }
    Ok(ponte_disbursement::digest(header, items))
}

#[tonic::async_trait]
impl pb::disbursements_server::Disbursements for DisbursementService {
    async fn submit_envelope(
        &self,
        request: GrpcRequest<Streaming<pb::EnvelopeUpload>>,
    ) -> Result<Response<pb::EnvelopeStatus>, Status> {
        let agency = participant_of(&request)?;
        let mut upload = request.into_inner();
        let first = upload.message().await?.ok_or_else(|| super::status::invalid("header", "empty upload"))?;
        let header = first
            .header
            .as_ref()
            .ok_or_else(|| super::status::invalid("header", "the first message needs the header"))?;
        let header = wire::header_from_wire(agency, header).map_err(to_status)?;
        if header.control_count == 0 || header.control_count > ENVELOPE_ITEMS_MAX {
            return Err(super::status::invalid(
                "header.control_count",
                format!("header.control_count must be 1 to {ENVELOPE_ITEMS_MAX}"),
            ));
        }
        let expected = header.control_count as usize;
        let mut items = Vec::with_capacity(expected.min(ENVELOPE_CHUNK_ITEMS_MAX));
        let mut message = Some(first);
        while let Some(m) = message {
            if m.header.is_some() && !items.is_empty() {
                return Err(super::status::invalid("header", "only the first message carries the header"));
            }
            if m.items.len() > UPLOAD_MESSAGE_ITEMS_MAX {
                return Err(super::status::invalid(
                    "items",
                    format!("at most {UPLOAD_MESSAGE_ITEMS_MAX} items per message"),
                ));
            }
            if items.len() + m.items.len() > expected {
                // Bounded memory: never hold more than the header announced.
                return Err(to_status(EnvelopeError::ControlCountMismatch {
                    expected: header.control_count,
                    found: (items.len() + m.items.len()) as u32,
                }));
            }
            for wire_item in &m.items {
                items.push(item_from_wire(self.engine.engine_config().country, items.len(), wire_item)?);
            }
            message = upload.message().await?;
        }
        let (header, items, digest) = tokio::task::spawn_blocking(move || {
            let digest = check_and_digest(&header, &items);
            (header, items, digest)
        })
        .await
        .map_err(|_| super::status::error(tonic::Code::Internal, "envelope check failed", "INTERNAL"))?;
        let digest = digest.map_err(to_status)?;

        let opened = self.envelope(op::OpenEnvelope { caller: agency, header, digest }).await?;
        if opened.sealed_at.is_some() {
            return Ok(Response::new(status_to_wire(&opened)));
        }
        let number = opened.number;
        let mut items = items.into_iter();
        loop {
            let chunk: Vec<EnvelopeItem> = items.by_ref().take(ENVELOPE_CHUNK_ITEMS_MAX).collect();
            if chunk.is_empty() {
                break;
            }
            self.envelope(op::AddEnvelopeItems { caller: agency, number, items: chunk }).await?;
        }
        let sealed = self.envelope(op::SealEnvelope { caller: agency, number }).await?;
        Ok(Response::new(status_to_wire(&sealed)))
    }

    async fn get_envelope(
        &self,
        request: GrpcRequest<pb::GetEnvelopeRequest>,
    ) -> Result<Response<pb::EnvelopeStatus>, Status> {
        let (caller, agency) = who(&request, &request.get_ref().agency)?;
        let reference = request.into_inner().reference;
        let view = self.envelope(op::GetEnvelope { caller, agency, reference }).await?;
        Ok(Response::new(status_to_wire(&view)))
    }

    async fn list_envelope_items(
        &self,
        request: GrpcRequest<pb::ListEnvelopeItemsRequest>,
    ) -> Result<Response<pb::ListEnvelopeItemsResponse>, Status> {
        let (caller, agency) = who(&request, &request.get_ref().agency)?;
        let m = request.into_inner();
        if m.limit == 0 || m.limit > ITEMS_PAGE_MAX {
            return Err(super::status::invalid("limit", format!("limit must be 1 to {ITEMS_PAGE_MAX}")));
        }
        let page = op::EnvelopeItems { caller, agency, reference: m.reference, offset: m.offset, limit: m.limit };
        let page = self.run(page).await?.map_err(to_status)?;
        let mut items = Vec::with_capacity(page.items.len());
        if let Some(range) = page.archived {
            // Items of a complete envelope that left memory: from the
            // archive once it holds everything the engine handed it.
            let Some(archive) = self.engine.archive() else {
                return Err(super::status::error(
                    tonic::Code::Internal,
                    "an envelope's items were archived but this switch has no archive",
                    "NO_ARCHIVE",
                ));
            };
            let archived = archive
                .read(range.mark, move |archive| archive.envelope_items(range.number, range.from, range.to))
                .await
                .map_err(to_status)?;
            if archived.len() != (range.to - range.from) as usize {
                return Err(super::status::not_found(format!(
                    "items {} to {} of this envelope are no longer in the archive (it keeps them {} days after \
                     the envelope completed)",
                    range.from,
                    range.to - 1,
                    super::archived::retention_days(&self.engine)
                )));
            }
            items.extend(archived);
        }
        items.extend(page.items);
        Ok(Response::new(pb::ListEnvelopeItemsResponse { items: items.iter().map(outcome_to_wire).collect() }))
    }
}

/// The caller (None: the operator) and the agency asked about: a
/// participant sees only its own envelopes; the operator names the agency.
fn who<T>(request: &GrpcRequest<T>, agency: &str) -> Result<(Option<ParticipantId>, ParticipantId), Status> {
    let parse = |text: &str| {
        text.parse::<ParticipantId>().map_err(|e| super::status::invalid("agency", format!("agency {text:?}: {e}")))
    };
    match caller_of(request)? {
        Caller::Participant(me) => {
            let agency = if agency.is_empty() { me } else { parse(agency)? };
            Ok((Some(me), agency))
        }
        Caller::Operator => Ok((None, parse(agency)?)),
    }
}
