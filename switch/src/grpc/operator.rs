//! `ponte.v1.Operator`: the central bank's administration of participants,
//! limits and settlement cycles.

use super::status::to_status;
use crate::net::tls::require_operator;
use crate::runtime::EngineHandle;
use ponte_domain::{Amount, ParticipantId};
use ponte_ledger::op::{self, Operation};
use ponte_ledger::{AdminError, ParticipantView};
use ponte_proto::v1 as pb;
use ponte_wire::{self as wire, FieldError};
use tonic::{Request as GrpcRequest, Response, Status};

fn participant_to_wire(view: &ParticipantView) -> pb::Participant {
    pb::Participant {
        code: view.id.to_string(),
        name: view.name.clone(),
        status: wire::participant_status_to_wire(view.status) as i32,
        net_debit_cap: view.net_debit_cap.to_string(),
        position: view.position.to_string(),
        reserved: view.reserved.to_string(),
        available: view.available.to_string(),
        online: view.online,
        liquidity: wire::liquidity_to_wire(view.liquidity) as i32,
        balance: view.balance.to_string(),
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
        let view = self.engine.ask(operation).await.map_err(to_status)?.map_err(to_status)?;
        Ok(Response::new(participant_to_wire(&view)))
    }
}

fn code(field: &'static str, text: &str) -> Result<ParticipantId, Status> {
    text.parse().map_err(|e| to_status(FieldError::new(field, e)))
}

fn cap(text: &str) -> Result<Amount, Status> {
    Amount::parse_non_negative(text).map_err(|e| to_status(FieldError::new("net_debit_cap", e)))
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
        let status = wire::participant_status_from_wire(m.status).map_err(to_status)?;
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
            _ => return Err(to_status(FieldError::new("category", "must be one letter from A to H"))),
        };
        self.participant(op::SetLookupCategory { id: code("code", &m.code)?, category }).await
    }

    async fn set_liquidity(
        &self,
        request: GrpcRequest<pb::SetLiquidityRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.get_ref();
        let liquidity = wire::liquidity_from_wire(m.liquidity).map_err(to_status)?;
        self.participant(op::SetLiquidity { id: code("code", &m.code)?, liquidity }).await
    }

    async fn move_funds(
        &self,
        request: GrpcRequest<pb::MoveFundsRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        require_operator(&request)?;
        let m = request.get_ref();
        let id = code("code", &m.code)?;
        let amount = wire::amount_positive("amount", &m.amount).map_err(to_status)?;
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
        let all = self.engine.ask(op::ListCycles).await.map_err(to_status)?;
        Ok(Response::new(pb::ListCyclesResponse { cycles: all.iter().map(cycle_to_wire).collect() }))
    }

    async fn close_cycle(
        &self,
        request: GrpcRequest<pb::CloseCycleRequest>,
    ) -> Result<Response<pb::CycleInfo>, Status> {
        require_operator(&request)?;
        let header = self.engine.ask(op::CloseCycle).await.map_err(to_status)?;
        Ok(Response::new(cycle_to_wire(&header)))
    }

    async fn confirm_cycle(
        &self,
        request: GrpcRequest<pb::ConfirmCycleRequest>,
    ) -> Result<Response<pb::CycleInfo>, Status> {
        require_operator(&request)?;
        let confirmed = self.engine.ask(op::ConfirmCycle { id: request.get_ref().id }).await.map_err(to_status)?;
        Ok(Response::new(cycle_to_wire(&confirmed.map_err(to_status)?)))
    }

    async fn cycle_report(
        &self,
        request: GrpcRequest<pb::CycleReportRequest>,
    ) -> Result<Response<pb::CycleReportResponse>, Status> {
        require_operator(&request)?;
        let m = request.get_ref();
        let format = pb::ReportFormat::try_from(m.format).unwrap_or(pb::ReportFormat::Json);
        let (header, movements) = super::archived::cycle_movements(&self.engine, m.id).await?;
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
        .map_err(|e| super::status::error(tonic::Code::Internal, format!("report task: {e}"), "INTERNAL"))?;
        let (digest_sha256, content) = built.map_err(|e| to_status(ponte_ledger::CycleError::Netting(e)))?;
        Ok(Response::new(pb::CycleReportResponse { id: m.id, digest_sha256, content }))
    }

    async fn list_participants(
        &self,
        request: GrpcRequest<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        require_operator(&request)?;
        let all = self.engine.ask(op::ListParticipants).await.map_err(to_status)?;
        let sum = all.iter().try_fold(Amount::ZERO, |acc, p| acc.checked_add(p.position));
        let sum =
            sum.ok_or_else(|| super::status::error(tonic::Code::Internal, "position sum overflows", "INTERNAL"))?;
        Ok(Response::new(pb::ListParticipantsResponse {
            participants: all.iter().map(participant_to_wire).collect(),
            position_sum: sum.to_string(),
        }))
    }
}

fn cycle_to_wire(header: &ponte_settlement::report::CycleHeader) -> pb::CycleInfo {
    pb::CycleInfo {
        id: header.id,
        status: wire::cycle_status_to_wire(header.status) as i32,
        opened_at_ms: header.opened_at,
        closed_at_ms: header.closed_at.unwrap_or(0),
        settled_at_ms: header.settled_at.unwrap_or(0),
    }
}
