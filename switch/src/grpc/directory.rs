//! `ponte.v1.Directory`: keys, lookups, reconciliation and claims.

use super::status::to_status;
use crate::net::tls::participant_of;
use crate::runtime::EngineHandle;
use ponte_directory::claims::ClaimError;
use ponte_directory::keys::{Country, KeyType};
use ponte_directory::registry::{DirectoryError, NewKey};
use ponte_ledger::op::{self, Operation};
use ponte_proto::v1 as pb;
use ponte_wire::account_to_wire;
use ponte_wire::{self as wire, FieldError};
use tonic::{Request as GrpcRequest, Response, Status};

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

    /// The country whose rules keys and end users are read by.
    fn country(&self) -> Country {
        self.engine.engine_config().country
    }

    async fn ask<O>(&self, operation: O) -> Result<O::Result, Status>
    where
        O: Operation + Send + 'static,
        O::Result: Send + 'static,
    {
        self.engine.ask(operation).await.map_err(to_status)
    }

    /// Runs a key operation that answers with the key's entry.
    async fn key_reply<O>(&self, operation: O) -> Result<Response<pb::KeyEntry>, Status>
    where
        O: Operation<Result = Result<ponte_directory::registry::Entry, DirectoryError>> + Send + 'static,
    {
        let entry = self.ask(operation).await?.map_err(to_status)?;
        Ok(Response::new(entry_to_wire(&entry)))
    }

    /// Runs a claim operation that answers with the claim.
    async fn claim_reply<O>(&self, operation: O) -> Result<Response<pb::ClaimInfo>, Status>
    where
        O: Operation<Result = Result<ponte_directory::claims::Claim, ClaimError>> + Send + 'static,
    {
        let claim = self.ask(operation).await?.map_err(to_status)?;
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
        let kind = wire::key_type_from_wire("type", m.r#type).map_err(to_status)?;
        let key = if kind == KeyType::Random {
            if !m.value.is_empty() {
                return Err(to_status(FieldError::new(
                    "value",
                    "must be empty for a random key: the directory makes it",
                )));
            }
            NewKey::Random(rand::random())
        } else {
            NewKey::Chosen { kind, value: m.value }
        };
        let account = wire::account_from_wire("account", m.account.as_ref()).map_err(to_status)?;
        let owner = wire::owner_from_wire("owner", m.owner.as_ref()).map_err(to_status)?;
        self.key_reply(op::RegisterKey { caller, key, account, owner }).await
    }

    async fn delete_key(&self, request: GrpcRequest<pb::DeleteKeyRequest>) -> Result<Response<pb::KeyEntry>, Status> {
        let caller = participant_of(&request)?;
        let key = wire::key_from_wire(&self.country(), "key", request.get_ref().key.as_ref()).map_err(to_status)?;
        self.key_reply(op::DeleteKey { caller, key }).await
    }

    async fn move_key(&self, request: GrpcRequest<pb::MoveKeyRequest>) -> Result<Response<pb::KeyEntry>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let key = wire::key_from_wire(&self.country(), "key", m.key.as_ref()).map_err(to_status)?;
        let account = wire::account_from_wire("account", m.account.as_ref()).map_err(to_status)?;
        self.key_reply(op::MoveKey { caller, key, account }).await
    }

    async fn lookup_key(
        &self,
        request: GrpcRequest<pb::LookupKeyRequest>,
    ) -> Result<Response<pb::LookupKeyResponse>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let key = wire::key_from_wire(&self.country(), "key", m.key.as_ref()).map_err(to_status)?;
        let user = m.end_user.as_ref().ok_or_else(|| to_status(FieldError::new("end_user", "is required")))?;
        let end_user = wire::end_user_from_wire(&self.country(), "end_user", user).map_err(to_status)?;
        let view = self.ask(op::LookupKey { caller, end_user, key }).await?.map_err(to_status)?;
        Ok(Response::new(pb::LookupKeyResponse {
            key: Some(wire::key_to_wire(&view.key)),
            account: Some(account_to_wire(&view.account)),
            owner_kind: wire::owner_kind_to_wire(view.owner_kind) as i32,
            owner_name_masked: view.owner_name_masked,
            owner_id_masked: view.owner_id_masked,
        }))
    }

    async fn list_keys(
        &self,
        request: GrpcRequest<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let limit = super::paging::page_size(m.page_size, super::paging::DIRECTORY_PAGE);
        let after = super::paging::keys_after(&m.page_token).map_err(to_status)?;
        let mut keys = self.ask(op::ListKeys { caller, after, limit: limit + 1 }).await?;
        let next_page_token =
            super::paging::cut_page(&mut keys.entries, limit, |last| super::paging::keys_token(&last.key));
        Ok(Response::new(pb::ListKeysResponse {
            entries: keys.entries.iter().map(entry_to_wire).collect(),
            digest: format!("{:016x}", keys.digest),
            next_page_token,
            total_size: keys.total as u64,
        }))
    }

    async fn open_claim(&self, request: GrpcRequest<pb::OpenClaimRequest>) -> Result<Response<pb::ClaimInfo>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let kind = wire::claim_kind_from_wire(m.kind).map_err(to_status)?;
        let key = wire::key_from_wire(&self.country(), "key", m.key.as_ref()).map_err(to_status)?;
        let account = wire::account_from_wire("account", m.account.as_ref()).map_err(to_status)?;
        let owner = wire::owner_from_wire("owner", m.owner.as_ref()).map_err(to_status)?;
        self.claim_reply(op::OpenClaim { caller, kind, key, account, owner }).await
    }

    async fn act_on_claim(
        &self,
        request: GrpcRequest<pb::ActOnClaimRequest>,
    ) -> Result<Response<pb::ClaimInfo>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let action = wire::claim_action_from_wire(m.action).map_err(to_status)?;
        self.claim_reply(op::ActOnClaim { caller, id: m.claim_id, action }).await
    }

    async fn list_claims(
        &self,
        request: GrpcRequest<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let caller = participant_of(&request)?;
        let m = request.get_ref();
        let limit = super::paging::page_size(m.page_size, super::paging::DIRECTORY_PAGE);
        let after = super::paging::claims_after(&m.page_token).map_err(to_status)?;
        let mut claims = self.ask(op::ListClaims { caller, after, limit: limit + 1 }).await?;
        let next_page_token = super::paging::cut_page(&mut claims, limit, |last| super::paging::claims_token(last.id));
        Ok(Response::new(pb::ListClaimsResponse {
            claims: claims.iter().map(wire::claim_to_wire).collect(),
            next_page_token,
        }))
    }
}
