//! The alias directory from a participant's side: register, move and delete
//! its customers' keys, look keys up for payers, reconcile its cache, and
//! handle claims.

use crate::client::Client;
use crate::error::Error;
use crate::wire;
use ponte_directory::claims::{ClaimAction, ClaimKind, ClaimStatus};
use ponte_directory::keys::{Country, Key, KeyType};
pub use ponte_directory::lookups::EndUser;
use ponte_directory::registry::{Owner, OwnerKind};
use ponte_domain::{Account, ParticipantId};
use ponte_proto::v1 as pb;

pub use ponte_directory::registry::entry_hash;

/// A directory entry as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: Key,
    pub account: Account,
    pub owner: Owner,
    pub created_at_ms: i64,
}

/// What a lookup returns: where to pay, and whom (masked) to show the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLookup {
    pub key: Key,
    pub account: Account,
    pub owner_kind: OwnerKind,
    pub owner_name_masked: String,
    pub owner_id_masked: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimInfo {
    pub id: u64,
    pub kind: ClaimKind,
    pub key: Key,
    pub claimer: ParticipantId,
    pub donor: ParticipantId,
    pub status: ClaimStatus,
    pub opened_at_ms: i64,
    pub resolve_by_ms: i64,
}

fn entry_from_wire(country: Country, e: pb::KeyEntry) -> Result<KeyEntry, Error> {
    Ok(KeyEntry {
        key: wire::key_from_wire(&country, "key", e.key.as_ref())?,
        account: wire::account_from_wire("account", e.account.as_ref())?,
        owner: wire::owner_from_wire("owner", e.owner.as_ref())?,
        created_at_ms: e.created_at_ms,
    })
}

fn claim_from_wire(country: Country, c: pb::ClaimInfo) -> Result<ClaimInfo, Error> {
    let code =
        |text: &str| text.parse::<ParticipantId>().map_err(|e| Error::Protocol(format!("participant code: {e}")));
    Ok(ClaimInfo {
        id: c.id,
        kind: wire::claim_kind_from_wire(c.kind)?,
        key: wire::key_from_wire(&country, "key", c.key.as_ref())?,
        claimer: code(&c.claimer)?,
        donor: code(&c.donor)?,
        status: wire::claim_status_from_wire(c.status)?,
        opened_at_ms: c.opened_at_ms,
        resolve_by_ms: c.resolve_by_ms,
    })
}

impl Client {
    /// Registers a key for one of this participant's accounts. For
    /// `KeyType::Random` pass an empty `value`: the directory makes the key.
    pub async fn register_key(
        &self,
        kind: KeyType,
        value: &str,
        account: &Account,
        owner: &Owner,
    ) -> Result<KeyEntry, Error> {
        let request = pb::RegisterKeyRequest {
            r#type: wire::key_type_to_wire(kind) as i32,
            value: value.to_owned(),
            account: Some(wire::account_to_wire(account)),
            owner: Some(wire::owner_to_wire(owner)),
        };
        entry_from_wire(self.country(), self.directory.clone().register_key(request).await?.into_inner())
    }

    pub async fn delete_key(&self, key: &Key) -> Result<KeyEntry, Error> {
        let request = pb::DeleteKeyRequest { key: Some(wire::key_to_wire(key)) };
        entry_from_wire(self.country(), self.directory.clone().delete_key(request).await?.into_inner())
    }

    pub async fn move_key(&self, key: &Key, account: &Account) -> Result<KeyEntry, Error> {
        let request =
            pb::MoveKeyRequest { key: Some(wire::key_to_wire(key)), account: Some(wire::account_to_wire(account)) };
        entry_from_wire(self.country(), self.directory.clone().move_key(request).await?.into_inner())
    }

    /// Looks a key up for `end_user`. `Error::Overloaded` means a lookup
    /// limit was reached (its message says when to retry); `Error::NotFound`
    /// that no such key exists.
    pub async fn lookup_key(&self, key: &Key, end_user: &EndUser) -> Result<KeyLookup, Error> {
        let request = pb::LookupKeyRequest {
            key: Some(wire::key_to_wire(key)),
            end_user: Some(wire::end_user_to_wire(end_user)),
        };
        let r = self.directory.clone().lookup_key(request).await?.into_inner();
        Ok(KeyLookup {
            key: wire::key_from_wire(&self.country(), "key", r.key.as_ref())?,
            account: wire::account_from_wire("account", r.account.as_ref())?,
            owner_kind: wire::owner_kind_from_wire("owner_kind", r.owner_kind)?,
            owner_name_masked: r.owner_name_masked,
            owner_id_masked: r.owner_id_masked,
        })
    }

    /// The keys this participant holds, and the directory's digest of them
    /// (compare with the XOR of [`entry_hash`] over your own cache).
    /// Every page of them: at most 10,000 keys per answer.
    pub async fn list_keys(&self) -> Result<(Vec<KeyEntry>, u64), Error> {
        let (mut all, mut token) = (Vec::new(), String::new());
        loop {
            let page = self.list_keys_page(DIRECTORY_PAGE_MAX, &token).await?;
            all.extend(page.entries);
            match page.next_page_token {
                Some(next) => token = next,
                None => return Ok((all, page.digest)),
            }
        }
    }

    /// One page of [`Client::list_keys`]: at most `page_size` keys (0: the
    /// switch's default, 1,000; at most 10,000) after the page
    /// `page_token` names (empty: the first page).
    pub async fn list_keys_page(&self, page_size: u32, page_token: &str) -> Result<KeysPage, Error> {
        let request = pb::ListKeysRequest { page_size, page_token: page_token.to_owned() };
        let r = self.directory.clone().list_keys(request).await?.into_inner();
        let digest = u64::from_str_radix(&r.digest, 16).map_err(|e| Error::Protocol(format!("digest: {e}")))?;
        let entries = r.entries.into_iter().map(|e| entry_from_wire(self.country(), e)).collect::<Result<_, _>>()?;
        Ok(KeysPage {
            entries,
            digest,
            total: r.total_size,
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// Opens a claim on a key another participant holds, for one of this
    /// participant's accounts.
    pub async fn open_claim(
        &self,
        kind: ClaimKind,
        key: &Key,
        account: &Account,
        owner: &Owner,
    ) -> Result<ClaimInfo, Error> {
        let request = pb::OpenClaimRequest {
            kind: wire::claim_kind_to_wire(kind) as i32,
            key: Some(wire::key_to_wire(key)),
            account: Some(wire::account_to_wire(account)),
            owner: Some(wire::owner_to_wire(owner)),
        };
        claim_from_wire(self.country(), self.directory.clone().open_claim(request).await?.into_inner())
    }

    pub async fn act_on_claim(&self, id: u64, action: ClaimAction) -> Result<ClaimInfo, Error> {
        let request = pb::ActOnClaimRequest { claim_id: id, action: wire::claim_action_to_wire(action) as i32 };
        claim_from_wire(self.country(), self.directory.clone().act_on_claim(request).await?.into_inner())
    }

    /// Claims this participant is party to, as claimer or donor.
    pub async fn claims(&self) -> Result<Vec<ClaimInfo>, Error> {
        let (mut all, mut token) = (Vec::new(), String::new());
        loop {
            let request = pb::ListClaimsRequest { page_size: DIRECTORY_PAGE_MAX, page_token: token };
            let r = self.directory.clone().list_claims(request).await?.into_inner();
            for c in r.claims {
                all.push(claim_from_wire(self.country(), c)?);
            }
            if r.next_page_token.is_empty() {
                return Ok(all);
            }
            token = r.next_page_token;
        }
    }
}

/// The most keys or claims one page holds.
pub const DIRECTORY_PAGE_MAX: u32 = 10_000;

/// One page of a participant's keys.
#[derive(Debug, Clone)]
pub struct KeysPage {
    /// In key order.
    pub entries: Vec<KeyEntry>,
    /// The digest of every key the participant holds (the same on every page).
    pub digest: u64,
    /// How many keys the participant holds.
    pub total: u64,
    /// The token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}
