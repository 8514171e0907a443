//! Conversions between the `ponte.v1` wire messages and domain types.
//!
//! Shared by the SDK and the switch so both sides read and write the
//! contract the same way. Parsing errors name the offending field.

mod disbursement;
mod states;

pub use disbursement::*;
pub use states::*;

use ponte_domain::{Account, AccountType, Amount, EndToEndId, ParticipantId, ReasonCode};
use ponte_proto::v1 as pb;
use std::fmt;

/// Metadata key of an error status whose request the switch refused before
/// executing anything (value `no`): the payment was not made, and sending
/// it again with the same end-to-end id is the only way it can be. An error
/// without it (a cut connection, a lost answer) leaves a payment in doubt.
pub const EXECUTED_METADATA: &str = "ponte-executed";

/// A malformed field: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl fmt::Display) -> FieldError {
        FieldError { field, message: message.to_string() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

pub fn account_type_to_wire(kind: AccountType) -> pb::AccountType {
    match kind {
        AccountType::Checking => pb::AccountType::Checking,
        AccountType::Savings => pb::AccountType::Savings,
        AccountType::Payment => pb::AccountType::Payment,
        AccountType::Salary => pb::AccountType::Salary,
    }
}

pub fn account_to_wire(account: &Account) -> pb::Account {
    pb::Account {
        participant: account.participant.to_string(),
        branch: account.branch_text(),
        number: account.number().to_owned(),
        r#type: account_type_to_wire(account.kind) as i32,
    }
}

/// Parses an account; `field` names it in errors ("payer", "payee.account").
pub fn account_from_wire(field: &'static str, account: Option<&pb::Account>) -> Result<Account, FieldError> {
    let account = account.ok_or_else(|| FieldError::new(field, "is required"))?;
    let participant: ParticipantId =
        account.participant.parse().map_err(|e| FieldError::new(field, format_args!("participant: {e}")))?;
    let kind = match pb::AccountType::try_from(account.r#type) {
        Ok(pb::AccountType::Checking) => AccountType::Checking,
        Ok(pb::AccountType::Savings) => AccountType::Savings,
        Ok(pb::AccountType::Payment) => AccountType::Payment,
        Ok(pb::AccountType::Salary) => AccountType::Salary,
        _ => {
            return Err(FieldError::new(field, "type: must be CHECKING, SAVINGS, PAYMENT or SALARY"));
        }
    };
    Account::new(participant, &account.branch, &account.number, kind).map_err(|e| FieldError::new(field, e))
}

pub fn reason_to_wire(reason: ReasonCode) -> pb::Reason {
    pb::Reason {
        code: reason.code().to_owned(),
        number: u32::from(reason.number()),
        transient: reason.is_transient(),
        description: reason.description().to_owned(),
        reason_code: i32::from(reason.number()),
    }
}

/// Reads a reason code a client sent as the enum `code` (0: none), the
/// ISO text `text` (empty: none), or both, which must agree. `Ok(None)`:
/// neither was given. Never maps an unknown value to a default.
pub fn reason_code_from_wire(field: &'static str, code: i32, text: &str) -> Result<Option<ReasonCode>, FieldError> {
    let by_number = match code {
        0 => None,
        n => Some(
            u16::try_from(n)
                .ok()
                .and_then(ReasonCode::from_number)
                .ok_or_else(|| FieldError::new(field, format_args!("unknown ReasonCode value {n}")))?,
        ),
    };
    let by_text = match text {
        "" => None,
        text => Some(text.parse::<ReasonCode>().map_err(|_| FieldError::new(field, "not a reason code"))?),
    };
    match (by_number, by_text) {
        (Some(a), Some(b)) if a != b => {
            Err(FieldError::new(field, format_args!("the enum says {} and the text {}", a.code(), b.code())))
        }
        (a, b) => Ok(a.or(b)),
    }
}

/// Reads a reason code the switch sent. Codes this SDK does not know yet
/// (a newer switch) are reported by number.
pub fn reason_from_wire(reason: Option<&pb::Reason>) -> Result<ReasonCode, FieldError> {
    let reason = reason.ok_or_else(|| FieldError::new("reason", "is required"))?;
    let number = if reason.reason_code != 0 { u32::try_from(reason.reason_code).unwrap_or(0) } else { reason.number };
    u16::try_from(number).ok().and_then(ReasonCode::from_number).or_else(|| reason.code.parse().ok()).ok_or_else(|| {
        FieldError::new("reason", format_args!("unknown reason code {} ({})", reason.code, reason.number))
    })
}

pub fn end_to_end_id(field: &'static str, text: &str) -> Result<EndToEndId, FieldError> {
    EndToEndId::parse(text).map_err(|e| FieldError::new(field, e))
}

pub fn amount_positive(field: &'static str, text: &str) -> Result<Amount, FieldError> {
    Amount::parse_positive(text).map_err(|e| FieldError::new(field, e))
}

pub fn amount_any(field: &'static str, text: &str) -> Result<Amount, FieldError> {
    Amount::parse_signed(text).map_err(|e| FieldError::new(field, e))
}

// ------------------------------------------------------------- directory

use ponte_directory::claims::{Claim, ClaimAction, ClaimKind, ClaimStatus};
use ponte_directory::keys::{self, CountryProfile, Key, KeyType};
use ponte_directory::lookups::EndUser;
use ponte_directory::registry::{Owner, OwnerKind};

/// Key types cross the wire by the names in the directory's one name table:
/// `ponte.v1.KeyType` value `KEY_TYPE_<name>` is [`KeyType::as_str`]'s
/// `<name>`, so a new key type needs no mapping here.
pub fn key_type_to_wire(kind: KeyType) -> pb::KeyType {
    (1..)
        .map_while(|value| pb::KeyType::try_from(value).ok())
        .find(|wire| wire_key_type_name(*wire) == Some(kind.as_str()))
        .expect("every key type has a ponte.v1.KeyType value of its name")
}

pub fn key_type_from_wire(field: &'static str, kind: i32) -> Result<KeyType, FieldError> {
    pb::KeyType::try_from(kind).ok().and_then(wire_key_type_name).and_then(KeyType::from_name).ok_or_else(|| {
        let names: Vec<_> = KeyType::ALL.iter().map(|k| k.as_str()).collect();
        FieldError::new(field, format_args!("must be one of {}", names.join(", ")))
    })
}

/// `PHONE` for `KEY_TYPE_PHONE`; `None` for `KEY_TYPE_UNSPECIFIED`.
fn wire_key_type_name(wire: pb::KeyType) -> Option<&'static str> {
    wire.as_str_name().strip_prefix("KEY_TYPE_").filter(|name| *name != "UNSPECIFIED")
}

pub fn key_to_wire(key: &Key) -> pb::Key {
    pb::Key { r#type: key_type_to_wire(key.kind()) as i32, value: key.value().to_owned() }
}

/// Parses a key that names an existing entry (random keys included), to
/// `country`'s rules. The error never contains the value.
pub fn key_from_wire(
    country: &dyn CountryProfile,
    field: &'static str,
    key: Option<&pb::Key>,
) -> Result<Key, FieldError> {
    let key = key.ok_or_else(|| FieldError::new(field, "is required"))?;
    let kind = key_type_from_wire(field, key.r#type)?;
    keys::parse_existing(country, kind, &key.value).map_err(|e| FieldError::new(field, e))
}

pub fn owner_kind_to_wire(kind: OwnerKind) -> pb::OwnerKind {
    match kind {
        OwnerKind::Person => pb::OwnerKind::Person,
        OwnerKind::Business => pb::OwnerKind::Business,
    }
}

pub fn owner_kind_from_wire(field: &'static str, kind: i32) -> Result<OwnerKind, FieldError> {
    match pb::OwnerKind::try_from(kind) {
        Ok(pb::OwnerKind::Person) => Ok(OwnerKind::Person),
        Ok(pb::OwnerKind::Business) => Ok(OwnerKind::Business),
        _ => Err(FieldError::new(field, "kind: must be PERSON or BUSINESS")),
    }
}

pub fn end_user_to_wire(user: &EndUser) -> pb::EndUser {
    pb::EndUser { kind: owner_kind_to_wire(user.kind) as i32, id: user.id.clone() }
}

/// Reads an end user; the id must be a valid national id of its kind in
/// `country`. The error never contains the id.
pub fn end_user_from_wire(
    country: &dyn CountryProfile,
    field: &'static str,
    user: &pb::EndUser,
) -> Result<EndUser, FieldError> {
    let kind = owner_kind_from_wire(field, user.kind)?;
    let id = match kind {
        OwnerKind::Person => country.person_id(&user.id),
        OwnerKind::Business => country.business_id(&user.id),
    }
    .map_err(|e| FieldError::new(field, format_args!("id: {e}")))?;
    Ok(EndUser { kind, id })
}

pub fn owner_to_wire(owner: &Owner) -> pb::OwnerInfo {
    pb::OwnerInfo { kind: owner_kind_to_wire(owner.kind) as i32, id: owner.id.clone(), name: owner.name.clone() }
}

/// Reads an owner as sent; the directory validates the id and name.
pub fn owner_from_wire(field: &'static str, owner: Option<&pb::OwnerInfo>) -> Result<Owner, FieldError> {
    let owner = owner.ok_or_else(|| FieldError::new(field, "is required"))?;
    Ok(Owner { kind: owner_kind_from_wire(field, owner.kind)?, id: owner.id.clone(), name: owner.name.clone() })
}

pub fn claim_kind_to_wire(kind: ClaimKind) -> pb::ClaimKind {
    match kind {
        ClaimKind::Ownership => pb::ClaimKind::Ownership,
        ClaimKind::Portability => pb::ClaimKind::Portability,
    }
}

pub fn claim_kind_from_wire(kind: i32) -> Result<ClaimKind, FieldError> {
    match pb::ClaimKind::try_from(kind) {
        Ok(pb::ClaimKind::Ownership) => Ok(ClaimKind::Ownership),
        Ok(pb::ClaimKind::Portability) => Ok(ClaimKind::Portability),
        _ => Err(FieldError::new("kind", "must be OWNERSHIP or PORTABILITY")),
    }
}

pub fn claim_status_to_wire(status: ClaimStatus) -> pb::ClaimStatus {
    match status {
        ClaimStatus::Open => pb::ClaimStatus::Open,
        ClaimStatus::WaitingResolution => pb::ClaimStatus::WaitingResolution,
        ClaimStatus::Confirmed => pb::ClaimStatus::Confirmed,
        ClaimStatus::Completed => pb::ClaimStatus::Completed,
        ClaimStatus::Cancelled => pb::ClaimStatus::Cancelled,
    }
}

pub fn claim_status_from_wire(status: i32) -> Result<ClaimStatus, FieldError> {
    match pb::ClaimStatus::try_from(status) {
        Ok(pb::ClaimStatus::Open) => Ok(ClaimStatus::Open),
        Ok(pb::ClaimStatus::WaitingResolution) => Ok(ClaimStatus::WaitingResolution),
        Ok(pb::ClaimStatus::Confirmed) => Ok(ClaimStatus::Confirmed),
        Ok(pb::ClaimStatus::Completed) => Ok(ClaimStatus::Completed),
        Ok(pb::ClaimStatus::Cancelled) => Ok(ClaimStatus::Cancelled),
        _ => Err(FieldError::new("status", "unknown claim status")),
    }
}

pub fn claim_action_to_wire(action: ClaimAction) -> pb::ClaimAction {
    match action {
        ClaimAction::Acknowledge => pb::ClaimAction::Acknowledge,
        ClaimAction::Confirm => pb::ClaimAction::Confirm,
        ClaimAction::Cancel => pb::ClaimAction::Cancel,
        ClaimAction::Complete => pb::ClaimAction::Complete,
    }
}

pub fn claim_action_from_wire(action: i32) -> Result<ClaimAction, FieldError> {
    match pb::ClaimAction::try_from(action) {
        Ok(pb::ClaimAction::Acknowledge) => Ok(ClaimAction::Acknowledge),
        Ok(pb::ClaimAction::Confirm) => Ok(ClaimAction::Confirm),
        Ok(pb::ClaimAction::Cancel) => Ok(ClaimAction::Cancel),
        Ok(pb::ClaimAction::Complete) => Ok(ClaimAction::Complete),
        _ => Err(FieldError::new("action", "must be ACKNOWLEDGE, CONFIRM, CANCEL or COMPLETE")),
    }
}

pub fn claim_to_wire(claim: &Claim) -> pb::ClaimInfo {
    pb::ClaimInfo {
        id: claim.id,
        kind: claim_kind_to_wire(claim.kind) as i32,
        key: Some(key_to_wire(&claim.key)),
        claimer: claim.claimer.to_string(),
        donor: claim.donor.to_string(),
        status: claim_status_to_wire(claim.status) as i32,
        opened_at_ms: claim.opened_at,
        resolve_by_ms: claim.resolve_by,
    }
}

#[cfg(test)]
mod reason_code_enum {
    use super::*;

    /// The `.proto` enum is the domain's table: one value per code, named
    /// after its ISO code, numbered with its stable number, and nothing else.
    #[test]
    fn the_proto_enum_is_the_reason_code_table() {
        for &reason in ReasonCode::ALL {
            let named = pb::ReasonCode::from_str_name(&format!("REASON_CODE_{}", reason.code()));
            assert_eq!(named.map(|n| n as i32), Some(i32::from(reason.number())), "{reason:?}");
            assert_eq!(reason_to_wire(reason).reason_code, i32::from(reason.number()));
            assert_eq!(reason_from_wire(Some(&reason_to_wire(reason))), Ok(reason));
        }
        let values = (0..=i32::from(u16::MAX)).filter(|n| pb::ReasonCode::try_from(*n).is_ok()).count();
        assert_eq!(values, ReasonCode::ALL.len() + 1, "the codes and UNSPECIFIED, no more");
    }

    #[test]
    fn a_reason_sent_as_enum_text_or_both_reads_the_same_and_nothing_is_guessed() {
        let ac03 = i32::from(ReasonCode::InvalidCreditorAccount.number());
        let read = |code, text| reason_code_from_wire("reason", code, text);
        assert_eq!(read(ac03, ""), Ok(Some(ReasonCode::InvalidCreditorAccount)));
        assert_eq!(read(0, "AC03"), Ok(Some(ReasonCode::InvalidCreditorAccount)));
        assert_eq!(read(ac03, "AC03"), Ok(Some(ReasonCode::InvalidCreditorAccount)));
        assert_eq!(read(0, ""), Ok(None));
        assert!(read(99, "").unwrap_err().message.contains("unknown ReasonCode value 99"));
        assert!(read(-1, "").is_err());
        assert!(read(ac03, "AC04").unwrap_err().message.contains("the enum says AC03 and the text AC04"));
        assert!(read(0, "XX99").is_err());
    }
}
