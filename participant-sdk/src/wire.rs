//! Conversions between the `ponte.v1` wire messages and domain types.
//!
//! Shared by the SDK and the switch so both sides read and write the
//! contract the same way. Parsing errors name the offending field.

use ponte_domain::{Account, AccountType, Amount, EndToEndId, ParticipantId, ReasonCode};
use ponte_proto::v1 as pb;
use std::fmt;

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
    }
}

/// Reads a reason code the switch sent. Codes this SDK does not know yet
/// (a newer switch) are reported by number.
pub fn reason_from_wire(reason: Option<&pb::Reason>) -> Result<ReasonCode, FieldError> {
    let reason = reason.ok_or_else(|| FieldError::new("reason", "is required"))?;
    u16::try_from(reason.number).ok().and_then(ReasonCode::from_number).or_else(|| reason.code.parse().ok()).ok_or_else(
        || FieldError::new("reason", format_args!("unknown reason code {} ({})", reason.code, reason.number)),
    )
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
