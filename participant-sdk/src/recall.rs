//! Recalls (ISO 20022 camt.056): asking the payee's participant to give a
//! settled payment back, and answering such a request.
//!
//! The payer's participant calls [`Client::recall`]. The payee's
//! participant hears of it on its inbox ([`crate::InboxHandler::on_recall`],
//! again each time its inbox opens while the recall is open) and either
//! returns the payment ([`Client::return_payment`] with the recalled
//! payment as the original: the recall is then accepted) or refuses it
//! ([`Client::refuse_recall`]). Unanswered by its deadline the recall
//! expires (refusal NOAS). The payer's participant hears how it closed on
//! its own inbox, and can ask at any time ([`Client::get_recall`]).

use crate::client::Client;
use crate::error::Error;
use crate::wire::{self, FieldError};
use ponte_domain::{Amount, EndToEndId, ParticipantId, ReasonCode};
use ponte_proto::v1 as pb;

/// Where a recall stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecallState {
    /// Waiting for the payee's participant.
    Open,
    /// Returned by `return_id`, `amount` of it.
    Accepted { return_id: EndToEndId, amount: Amount },
    /// Refused by the payee's participant.
    Refused { reason: ReasonCode },
    /// Not answered by its deadline (refusal NOAS).
    Expired,
}

/// A recall, as either of its two participants sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recall {
    /// The payment recalled.
    pub original: EndToEndId,
    pub state: RecallState,
    /// The payer's participant, which asked.
    pub requester: ParticipantId,
    /// The payee's participant, which answers.
    pub responder: ParticipantId,
    /// What was left of the payment (not yet returned) when recalled.
    pub amount: Amount,
    pub reason: ReasonCode,
    pub text: String,
    pub opened_at_ms: i64,
    /// Answer (return or refuse) before this.
    pub answer_by_ms: i64,
    pub closed_at_ms: Option<i64>,
}

fn participant(field: &'static str, text: &str) -> Result<ParticipantId, FieldError> {
    text.parse().map_err(|_| FieldError::new(field, "not a participant code"))
}

/// Reads a recall the switch sent.
pub fn recall_from_wire(r: &pb::RecallStatus) -> Result<Recall, FieldError> {
    let state = match pb::RecallState::try_from(r.state) {
        Ok(pb::RecallState::Open) => RecallState::Open,
        Ok(pb::RecallState::Accepted) => RecallState::Accepted {
            return_id: wire::end_to_end_id("return_id", &r.return_id)?,
            amount: wire::amount_positive("returned_amount", &r.returned_amount)?,
        },
        Ok(pb::RecallState::Refused) => RecallState::Refused { reason: wire::reason_from_wire(r.refusal.as_ref())? },
        Ok(pb::RecallState::Expired) => RecallState::Expired,
        _ => return Err(FieldError::new("state", format_args!("unknown RecallState value {}", r.state))),
    };
    Ok(Recall {
        original: wire::end_to_end_id("original_end_to_end_id", &r.original_end_to_end_id)?,
        state,
        requester: participant("requester", &r.requester)?,
        responder: participant("responder", &r.responder)?,
        amount: wire::amount_positive("amount", &r.amount)?,
        reason: wire::reason_from_wire(r.reason.as_ref())?,
        text: r.text.clone(),
        opened_at_ms: r.opened_at_ms,
        answer_by_ms: r.answer_by_ms,
        closed_at_ms: (r.closed_at_ms != 0).then_some(r.closed_at_ms),
    })
}

impl Client {
    /// Recalls a settled payment this participant sent, for `reason` (AC03,
    /// AM09, DUPL, FRAD, TECH, CUST or UPAY) with a text for the payee's
    /// participant (at most 105 characters). Safe to repeat: the same
    /// recall answers the same; another reason or text is `ALREADY_EXISTS`.
    pub async fn recall(&self, original: &EndToEndId, reason: ReasonCode, text: &str) -> Result<Recall, Error> {
        let request = pb::RecallRequest {
            original_end_to_end_id: original.to_string(),
            reason: reason.code().to_owned(),
            reason_code: i32::from(reason.number()),
            text: text.to_owned(),
        };
        let answer = self.raw().recall(request).await?.into_inner();
        Ok(recall_from_wire(&answer)?)
    }

    /// Refuses a recall of a payment this participant received, for
    /// `reason` (AC04, AM04, ARDT, CUST, LEGL, NOAS or AGNT). To accept
    /// one, return the payment ([`Client::return_payment`]).
    pub async fn refuse_recall(&self, original: &EndToEndId, reason: ReasonCode) -> Result<Recall, Error> {
        let request = pb::RefuseRecallRequest {
            original_end_to_end_id: original.to_string(),
            reason: reason.code().to_owned(),
            reason_code: i32::from(reason.number()),
        };
        let answer = self.raw().refuse_recall(request).await?.into_inner();
        Ok(recall_from_wire(&answer)?)
    }

    /// The recall of a payment this participant sent or received.
    pub async fn get_recall(&self, original: &EndToEndId) -> Result<Recall, Error> {
        let request = pb::GetRecallRequest { original_end_to_end_id: original.to_string() };
        let answer = self.raw().get_recall(request).await?.into_inner();
        Ok(recall_from_wire(&answer)?)
    }
}
