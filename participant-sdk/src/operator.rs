//! The central bank's administration client.

use crate::client::Identity;
use crate::error::Error;
use crate::wire;
use ponte_domain::{Amount, Liquidity, ParticipantId, ParticipantStatus};
use ponte_proto::v1 as pb;
use ponte_proto::v1::operator_client::OperatorClient as RawOperatorClient;
use ponte_settlement::report::CycleStatus;
use tonic::transport::Channel;

/// A participant as the operator sees it.
#[derive(Debug, Clone)]
pub struct ParticipantInfo {
    pub code: ParticipantId,
    pub name: String,
    pub status: ParticipantStatus,
    pub net_debit_cap: Amount,
    pub position: Amount,
    pub reserved: Amount,
    pub available: Amount,
    pub online: bool,
    pub liquidity: Liquidity,
    pub balance: Amount,
}

impl ParticipantInfo {
    fn from_wire(p: pb::Participant) -> Result<ParticipantInfo, Error> {
        Ok(ParticipantInfo {
            code: p.code.parse().map_err(|e| Error::Protocol(format!("participant code: {e}")))?,
            status: wire::participant_status_from_wire(p.status)?,
            net_debit_cap: wire::amount_any("net_debit_cap", &p.net_debit_cap)?,
            position: wire::amount_any("position", &p.position)?,
            reserved: wire::amount_any("reserved", &p.reserved)?,
            available: wire::amount_any("available", &p.available)?,
            online: p.online,
            liquidity: wire::liquidity_from_wire(p.liquidity)?,
            balance: if p.balance.is_empty() { Amount::ZERO } else { wire::amount_any("balance", &p.balance)? },
            name: p.name,
        })
    }
}

/// Operator calls; needs the operator certificate.
#[derive(Debug, Clone)]
pub struct OperatorClient {
    raw: RawOperatorClient<Channel>,
}

impl OperatorClient {
    pub async fn connect(endpoint: &str, identity: &Identity) -> Result<OperatorClient, Error> {
        Ok(OperatorClient { raw: RawOperatorClient::new(identity.channel(endpoint).await?) })
    }

    /// Admits a participant with a net debit cap. Registering the same
    /// participant again with the same details is a no-op.
    pub async fn register_participant(
        &self,
        code: ParticipantId,
        name: &str,
        net_debit_cap: Amount,
    ) -> Result<ParticipantInfo, Error> {
        let request = pb::RegisterParticipantRequest {
            code: code.to_string(),
            name: name.to_owned(),
            net_debit_cap: net_debit_cap.to_string(),
        };
        ParticipantInfo::from_wire(self.raw.clone().register_participant(request).await?.into_inner())
    }

    pub async fn set_limit(&self, code: ParticipantId, net_debit_cap: Amount) -> Result<ParticipantInfo, Error> {
        let request = pb::SetLimitRequest { code: code.to_string(), net_debit_cap: net_debit_cap.to_string() };
        ParticipantInfo::from_wire(self.raw.clone().set_limit(request).await?.into_inner())
    }

    pub async fn set_status(&self, code: ParticipantId, status: ParticipantStatus) -> Result<ParticipantInfo, Error> {
        let status = match status {
            ParticipantStatus::Active => pb::ParticipantStatus::Active,
            ParticipantStatus::Suspended => pb::ParticipantStatus::Suspended,
        };
        let request = pb::SetParticipantStatusRequest { code: code.to_string(), status: status as i32 };
        ParticipantInfo::from_wire(self.raw.clone().set_participant_status(request).await?.into_inner())
    }

    /// Sets a participant's directory lookup category, 'A' (largest bucket) to 'H'.
    pub async fn set_lookup_category(&self, code: ParticipantId, category: char) -> Result<ParticipantInfo, Error> {
        let request = pb::SetLookupCategoryRequest { code: code.to_string(), category: category.to_string() };
        ParticipantInfo::from_wire(self.raw.clone().set_lookup_category(request).await?.into_inner())
    }

    pub async fn participant(&self, code: ParticipantId) -> Result<ParticipantInfo, Error> {
        let request = pb::GetParticipantRequest { code: code.to_string() };
        ParticipantInfo::from_wire(self.raw.clone().get_participant(request).await?.into_inner())
    }

    /// Makes a participant prefunded (`true`) or net-debit-capped (`false`).
    pub async fn set_prefunded(&self, code: ParticipantId, prefunded: bool) -> Result<ParticipantInfo, Error> {
        let liquidity = wire::liquidity_to_wire(if prefunded { Liquidity::Prefunded } else { Liquidity::NetDebitCap });
        let request = pb::SetLiquidityRequest { code: code.to_string(), liquidity: liquidity as i32 };
        ParticipantInfo::from_wire(self.raw.clone().set_liquidity(request).await?.into_inner())
    }

    /// Records funds in (`withdraw = false`) or out of a prefunded balance.
    pub async fn move_funds(
        &self,
        code: ParticipantId,
        amount: Amount,
        withdraw: bool,
    ) -> Result<ParticipantInfo, Error> {
        let request = pb::MoveFundsRequest { code: code.to_string(), withdraw, amount: amount.to_string() };
        ParticipantInfo::from_wire(self.raw.clone().move_funds(request).await?.into_inner())
    }

    /// Every settlement cycle (the last one is open).
    pub async fn cycles(&self) -> Result<Vec<CycleInfo>, Error> {
        let r = self.raw.clone().list_cycles(pb::ListCyclesRequest {}).await?.into_inner();
        r.cycles.into_iter().map(CycleInfo::from_wire).collect()
    }

    /// Closes the open cycle now; returns the closed cycle.
    pub async fn close_cycle(&self) -> Result<CycleInfo, Error> {
        CycleInfo::from_wire(self.raw.clone().close_cycle(pb::CloseCycleRequest {}).await?.into_inner())
    }

    /// Confirms a closed cycle was posted in the RTGS.
    pub async fn confirm_cycle(&self, id: u64) -> Result<CycleInfo, Error> {
        CycleInfo::from_wire(self.raw.clone().confirm_cycle(pb::ConfirmCycleRequest { id }).await?.into_inner())
    }

    /// A cycle's report as (digest, content) in `format`.
    pub async fn cycle_report(&self, id: u64, format: ReportFormat) -> Result<(String, String), Error> {
        let format = match format {
            ReportFormat::Json => pb::ReportFormat::Json,
            ReportFormat::Csv => pb::ReportFormat::Csv,
            ReportFormat::Camt053 => pb::ReportFormat::Camt053,
        };
        let r = self.raw.clone().cycle_report(pb::CycleReportRequest { id, format: format as i32 }).await?.into_inner();
        Ok((r.digest_sha256, r.content))
    }

    /// Every participant, and the sum of their positions (always zero).
    pub async fn participants(&self) -> Result<(Vec<ParticipantInfo>, Amount), Error> {
        let response = self.raw.clone().list_participants(pb::ListParticipantsRequest {}).await?.into_inner();
        let sum = wire::amount_any("position_sum", &response.position_sum)?;
        let all = response.participants.into_iter().map(ParticipantInfo::from_wire).collect::<Result<_, _>>()?;
        Ok((all, sum))
    }
}

/// A settlement cycle as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleInfo {
    pub id: u64,
    pub status: CycleStatus,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub settled_at_ms: Option<i64>,
}

impl CycleInfo {
    fn from_wire(c: pb::CycleInfo) -> Result<CycleInfo, Error> {
        let status = wire::cycle_status_from_wire(c.status)?;
        Ok(CycleInfo {
            id: c.id,
            status,
            opened_at_ms: c.opened_at_ms,
            closed_at_ms: (c.closed_at_ms != 0).then_some(c.closed_at_ms),
            settled_at_ms: (c.settled_at_ms != 0).then_some(c.settled_at_ms),
        })
    }
}

/// Formats of a cycle report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Csv,
    /// ISO 20022 camt.053-style XML statement.
    Camt053,
}
