//! Recalls over gRPC (`Recall`, `RefuseRecall`, `GetRecall` and the inbox's
//! `RecallStatus`): the checks and the wire form, shared with the ISO 20022
//! gateway's camt.056 and camt.029.

use super::status::to_status;
use crate::runtime::EngineHandle;
use ponte_domain::{CURRENCY, ParticipantId, ReasonCode};
use ponte_ledger::op;
use ponte_ledger::{RECALL_TEXT_LEN_MAX, Recall, RecallOrder, RecallState};
use ponte_proto::v1 as pb;
use ponte_wire::{self as wire, FieldError, reason_to_wire};
use tonic::Status;

/// A recall as the wire carries it.
pub(crate) fn recall_to_wire(recall: &Recall) -> pb::RecallStatus {
    let (state, refusal, return_id, returned) = match recall.state {
        RecallState::Open => (pb::RecallState::Open, None, String::new(), String::new()),
        RecallState::Accepted { return_id, amount } => {
            (pb::RecallState::Accepted, None, return_id.to_string(), amount.to_string())
        }
        RecallState::Refused { reason } => (pb::RecallState::Refused, Some(reason), String::new(), String::new()),
        RecallState::Expired => (pb::RecallState::Expired, Some(ReasonCode::NoAnswer), String::new(), String::new()),
    };
    pb::RecallStatus {
        original_end_to_end_id: recall.original.to_string(),
        state: state.into(),
        requester: recall.requester.to_string(),
        responder: recall.responder.to_string(),
        amount: recall.amount.to_string(),
        currency: CURRENCY.to_owned(),
        reason: Some(reason_to_wire(recall.reason)),
        text: recall.text.clone(),
        opened_at_ms: recall.opened_at,
        answer_by_ms: recall.answer_by,
        closed_at_ms: recall.closed_at.unwrap_or(0),
        refusal: refusal.map(reason_to_wire),
        return_id,
        returned_amount: returned,
    }
}

/// A recall from `caller`, checked and opened (the gRPC `Recall` and the
/// ISO 20022 gateway's camt.056 both come here).
pub(crate) async fn ask_recall(
    engine: &EngineHandle,
    caller: ParticipantId,
    message: &pb::RecallRequest,
) -> Result<Recall, Status> {
    let original = wire::end_to_end_id("original_end_to_end_id", &message.original_end_to_end_id).map_err(to_status)?;
    let reason = wire::reason_code_from_wire("reason", message.reason_code, &message.reason).map_err(to_status)?;
    let reason = reason.filter(|r| r.is_recall_reason()).ok_or_else(|| {
        to_status(FieldError::new("reason", "must be a recall reason: AC03, AM09, DUPL, FRAD, TECH, CUST or UPAY"))
    })?;
    if message.text.chars().count() > RECALL_TEXT_LEN_MAX {
        return Err(to_status(FieldError::new("text", format_args!("at most {RECALL_TEXT_LEN_MAX} characters"))));
    }
    if message.text.chars().any(char::is_control) {
        return Err(to_status(FieldError::new("text", "must not contain control characters")));
    }
    let order = RecallOrder { requester: caller, original, reason, text: message.text.clone() };
    let mut archived = None;
    loop {
        let asked = op::RequestRecall(order.clone(), archived.take());
        match engine.ask(asked).await.map_err(to_status)? {
            Ok(recall) => return Ok(recall),
            // The original left memory: once more with it from the archive.
            Err(ponte_ledger::RecallError::NotHeld(mark)) => {
                match super::archived::original(engine, mark, original).await? {
                    Some(found) if archived.is_none() => archived = Some(Box::new(found)),
                    _ => return Err(to_status(ponte_ledger::RecallError::OriginalNotFound(original))),
                }
            }
            Err(error) => return Err(to_status(error)),
        }
    }
}

/// A refusal of a recall by `caller` (gRPC `RefuseRecall` and the
/// gateway's camt.029 both come here).
pub(crate) async fn refuse_recall(
    engine: &EngineHandle,
    caller: ParticipantId,
    original: &str,
    code: i32,
    text: &str,
) -> Result<Recall, Status> {
    let original = wire::end_to_end_id("original_end_to_end_id", original).map_err(to_status)?;
    let reason = wire::reason_code_from_wire("reason", code, text).map_err(to_status)?;
    let reason = reason.filter(|r| r.is_recall_refusal()).ok_or_else(|| {
        to_status(FieldError::new("reason", "must be a recall refusal: AC04, AM04, ARDT, CUST, LEGL, NOAS or AGNT"))
    })?;
    let refused = op::RefuseRecall { responder: caller, original, reason };
    engine.ask(refused).await.map_err(to_status)?.map_err(to_status)
}
