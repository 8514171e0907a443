//! The enums that cross the wire as `ponte.v1` enum values, each mapped in
//! one place for the switch and the SDK alike.

use crate::FieldError;
use crate::reason_code_from_wire;
use ponte_domain::{Decision, Liquidity, ParticipantStatus, TransferState, TransferView};
use ponte_proto::v1 as pb;
use ponte_settlement::report::CycleStatus;

pub fn transfer_state_to_wire(state: TransferState) -> pb::PaymentStatus {
    match state {
        TransferState::Received => pb::PaymentStatus::Received,
        TransferState::Reserved => pb::PaymentStatus::Reserved,
        TransferState::Settled => pb::PaymentStatus::Settled,
        TransferState::Rejected => pb::PaymentStatus::Rejected,
    }
}

pub fn transfer_state_from_wire(status: i32) -> Result<TransferState, FieldError> {
    match pb::PaymentStatus::try_from(status) {
        Ok(pb::PaymentStatus::Received) => Ok(TransferState::Received),
        Ok(pb::PaymentStatus::Reserved) => Ok(TransferState::Reserved),
        Ok(pb::PaymentStatus::Settled) => Ok(TransferState::Settled),
        Ok(pb::PaymentStatus::Rejected) => Ok(TransferState::Rejected),
        _ => Err(FieldError::new("status", format_args!("unknown status {status}"))),
    }
}

pub fn participant_status_to_wire(status: ParticipantStatus) -> pb::ParticipantStatus {
    match status {
        ParticipantStatus::Active => pb::ParticipantStatus::Active,
        ParticipantStatus::Suspended => pb::ParticipantStatus::Suspended,
    }
}

pub fn participant_status_from_wire(status: i32) -> Result<ParticipantStatus, FieldError> {
    match pb::ParticipantStatus::try_from(status) {
        Ok(pb::ParticipantStatus::Active) => Ok(ParticipantStatus::Active),
        Ok(pb::ParticipantStatus::Suspended) => Ok(ParticipantStatus::Suspended),
        _ => Err(FieldError::new("status", "must be ACTIVE or SUSPENDED")),
    }
}

pub fn liquidity_to_wire(liquidity: Liquidity) -> pb::Liquidity {
    match liquidity {
        Liquidity::NetDebitCap => pb::Liquidity::NetDebitCap,
        Liquidity::Prefunded => pb::Liquidity::Prefunded,
    }
}

pub fn liquidity_from_wire(liquidity: i32) -> Result<Liquidity, FieldError> {
    match pb::Liquidity::try_from(liquidity) {
        Ok(pb::Liquidity::NetDebitCap) => Ok(Liquidity::NetDebitCap),
        Ok(pb::Liquidity::Prefunded) => Ok(Liquidity::Prefunded),
        _ => Err(FieldError::new("liquidity", "must be NET_DEBIT_CAP or PREFUNDED")),
    }
}

pub fn cycle_status_to_wire(status: CycleStatus) -> pb::CycleStatus {
    match status {
        CycleStatus::Open => pb::CycleStatus::Open,
        CycleStatus::Closed => pb::CycleStatus::Closed,
        CycleStatus::Settled => pb::CycleStatus::Settled,
    }
}

pub fn cycle_status_from_wire(status: i32) -> Result<CycleStatus, FieldError> {
    match pb::CycleStatus::try_from(status) {
        Ok(pb::CycleStatus::Open) => Ok(CycleStatus::Open),
        Ok(pb::CycleStatus::Closed) => Ok(CycleStatus::Closed),
        Ok(pb::CycleStatus::Settled) => Ok(CycleStatus::Settled),
        _ => Err(FieldError::new("status", format_args!("unknown cycle status {status}"))),
    }
}

/// A payee's answer to the payment `id` as an `InboxUp` carries it: the
/// decision and, for a refusal, the reason code (as the enum and its text).
pub fn answer_to_wire(id: String, decision: Decision) -> pb::PayeeAnswer {
    match decision {
        Decision::Accept => pb::PayeeAnswer {
            end_to_end_id: id,
            decision: pb::Decision::Accept as i32,
            reject_reason: String::new(),
            reject_code: 0,
        },
        Decision::Reject(reason) => pb::PayeeAnswer {
            end_to_end_id: id,
            decision: pb::Decision::Reject as i32,
            reject_reason: reason.code().to_owned(),
            reject_code: i32::from(reason.number()),
        },
    }
}

/// Reads a payee's answer. Refused, with the field and why: an answer
/// without a decision (`DECISION_UNSPECIFIED` or a value this version does
/// not know), and a refusal without a reason code a payee may give
/// (`ReasonCode::is_reject_reason`; docs/PAYMENTS.md "Reason codes"), given
/// as `reject_code`, `reject_reason`, or both in agreement.
pub fn decision_from_wire(decision: i32, reject_reason: &str, reject_code: i32) -> Result<Decision, FieldError> {
    match pb::Decision::try_from(decision) {
        Ok(pb::Decision::Accept) => Ok(Decision::Accept),
        Ok(pb::Decision::Reject) => match reason_code_from_wire("reject_reason", reject_code, reject_reason)? {
            Some(reason) if reason.is_reject_reason() => Ok(Decision::Reject(reason)),
            Some(reason) if reason.is_payee_reason() => {
                Err(FieldError::new("reject_reason", "a return reason, not a reason to refuse a payment"))
            }
            Some(_) => Err(FieldError::new("reject_reason", "a code the switch gives, not one a payee may give")),
            None => Err(FieldError::new("reject_reason", "a refusal needs a payee reason code (e.g. AC03)")),
        },
        Ok(pb::Decision::Unspecified) => {
            Err(FieldError::new("decision", "DECISION_UNSPECIFIED: answer DECISION_ACCEPT or DECISION_REJECT"))
        }
        Err(_) => Err(FieldError::new("decision", format!("unknown value {decision}"))),
    }
}

/// A transfer as one of its sides sees it (the answer to `GetStatus` and
/// each row of `CycleTransfers`).
pub fn transfer_to_wire(view: &TransferView) -> pb::TransferStatus {
    pb::TransferStatus {
        end_to_end_id: view.id.to_string(),
        status: transfer_state_to_wire(view.state) as i32,
        reason: view.reason.map(crate::reason_to_wire),
        payer: Some(crate::account_to_wire(&view.payer)),
        payee: Some(crate::account_to_wire(&view.payee)),
        amount: view.amount.to_string(),
        created_at_ms: view.created_at,
        settled_at_ms: view.settled_at.unwrap_or(0),
        returned_amount: view.returned.to_string(),
        original_end_to_end_id: view.original.map(|o| o.to_string()).unwrap_or_default(),
    }
}

pub fn transfer_from_wire(s: &pb::TransferStatus) -> Result<TransferView, FieldError> {
    Ok(TransferView {
        id: crate::end_to_end_id("end_to_end_id", &s.end_to_end_id)?,
        state: transfer_state_from_wire(s.status)?,
        reason: s.reason.as_ref().map(|r| crate::reason_from_wire(Some(r))).transpose()?,
        payer: crate::account_from_wire("payer", s.payer.as_ref())?,
        payee: crate::account_from_wire("payee", s.payee.as_ref())?,
        amount: crate::amount_positive("amount", &s.amount)?,
        created_at: s.created_at_ms,
        settled_at: (s.settled_at_ms != 0).then_some(s.settled_at_ms),
        returned: crate::amount_any("returned_amount", &s.returned_amount)?,
        original: if s.original_end_to_end_id.is_empty() {
            None
        } else {
            Some(crate::end_to_end_id("original_end_to_end_id", &s.original_end_to_end_id)?)
        },
    })
}
