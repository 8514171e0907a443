//! The gateway's recalls: camt.056 in (a payer's participant recalls
//! payments), camt.029 out (where each stands) and in (a payee's
//! participant refuses), through the same checks as gRPC
//! (`grpc::recalls`).

use super::{Body, Gateway, acting_as, convert, full, listed, message_id, text};
use bytes::Bytes;
use hyper::StatusCode;
use ponte_domain::ParticipantId;
use ponte_iso20022::model::*;

impl Gateway {
    /// camt.056: each payment recalled as a gRPC `Recall` is; the answer is
    /// a camt.029 saying where each recall stands (PDCR: sent to the
    /// payee's participant; RJCR: refused by the switch, or by the payee).
    pub(super) async fn recalls(
        &self,
        caller: ParticipantId,
        message: CancellationRequest,
    ) -> Result<Resolution, (StatusCode, String)> {
        message_id(&message.Assgnmt.Id)?;
        acting_as(caller, std::iter::once(convert::agent_code(&message.Assgnmt.Assgnr.Agt)), "Assgnmt/Assgnr/Agt")?;
        let mut statuses = Vec::new();
        for tx in message.Undrlyg.iter().flat_map(|u| u.TxInf.iter()) {
            let original = tx.OrgnlEndToEndId.clone().unwrap_or_default();
            let request = match convert::recall_request(tx) {
                Ok(request) => request,
                Err(refusal) => {
                    statuses.push(convert::recall_refused(&original, tx.CxlId.clone(), refusal.code, &refusal.text));
                    continue;
                }
            };
            let status = match crate::grpc::recalls::ask_recall(&self.engine, caller, &request).await {
                Ok(recall) => convert::recall_status(&recall),
                Err(status) if status.code() == tonic::Code::PermissionDenied => {
                    return Err((StatusCode::FORBIDDEN, status.message().to_owned()));
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    return Err((StatusCode::SERVICE_UNAVAILABLE, status.message().to_owned()));
                }
                Err(status) => {
                    let refusal = convert::recall_refusal_of(&status);
                    convert::recall_refused(&original, None, refusal.code, &refusal.text)
                }
            };
            statuses.push(CancellationTxStatus { CxlStsId: tx.CxlId.clone(), ..status });
        }
        Ok(self.resolution(caller, caller, statuses))
    }

    /// A new case assignment from participant `from` to `to`.
    pub(super) fn assignment(&self, from: ParticipantId, to: ParticipantId) -> Assignment {
        let header = self.header();
        Assignment {
            Id: header.MsgId,
            Assgnr: PartyChoice { Agt: convert::agent(from) },
            Assgne: PartyChoice { Agt: convert::agent(to) },
            CreDtTm: header.CreDtTm,
        }
    }

    /// A camt.029 with the status of each recall: `Sts/Conf` RJCR when all
    /// are refused, CNCL when all are accepted, PDCR otherwise.
    pub(super) fn resolution(
        &self,
        from: ParticipantId,
        to: ParticipantId,
        statuses: Vec<CancellationTxStatus>,
    ) -> Resolution {
        let all = |status: &str| statuses.iter().all(|s| s.TxCxlSts.as_deref() == Some(status));
        let conf = if all("RJCR") {
            "RJCR"
        } else if all("ACCR") {
            "CNCL"
        } else {
            "PDCR"
        };
        Resolution {
            Assgnmt: self.assignment(from, to),
            RslvdCase: None,
            Sts: InvestigationStatus { Conf: conf.into() },
            CxlDtls: vec![CancellationDetails { TxInfAndSts: statuses }],
        }
    }

    /// camt.029 from a payee's participant: its refusals of recalls (RJCR
    /// with a reason), all read before any is taken. A recall is accepted
    /// by returning the payment (pacs.004), not here.
    pub(super) async fn refusals(&self, caller: ParticipantId, message: Resolution) -> hyper::Response<Body> {
        if let Err((status, why)) = message_id(&message.Assgnmt.Id) {
            return text(status, why);
        }
        let assigner = std::iter::once(convert::agent_code(&message.Assgnmt.Assgnr.Agt));
        if let Err((status, why)) = acting_as(caller, assigner, "Assgnmt/Assgnr/Agt") {
            return text(status, why);
        }
        let mut refusals = Vec::new();
        let mut errors = Vec::new();
        for tx in message.CxlDtls.iter().flat_map(|d| d.TxInfAndSts.iter()) {
            match convert::recall_refusal(tx) {
                Ok(refusal) => refusals.push(refusal),
                Err(error) => errors.push(error),
            }
        }
        if refusals.is_empty() && errors.is_empty() {
            errors.push("CxlDtls/TxInfAndSts: at least one recall refused".into());
        }
        if !errors.is_empty() {
            return text(StatusCode::BAD_REQUEST, listed("no refusal of this camt.029 was taken", &errors));
        }
        let mut failed = Vec::new();
        for (original, code) in &refusals {
            let refused = crate::grpc::recalls::refuse_recall(&self.engine, caller, original, 0, code).await;
            match refused {
                Ok(_) => {}
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    return text(StatusCode::SERVICE_UNAVAILABLE, status.message());
                }
                Err(status) => failed.push(format!("{original}: {}", status.message())),
            }
        }
        if !failed.is_empty() {
            let taken = refusals.len() - failed.len();
            let why = format!("{taken} refusal(s) of this camt.029 were taken; these were not");
            return text(StatusCode::UNPROCESSABLE_ENTITY, listed(&why, &failed));
        }
        hyper::Response::builder().status(StatusCode::ACCEPTED).body(full(Bytes::new())).expect("a valid response")
    }
}
