//! The one table from errors to gRPC status codes. Every service answers
//! an error through [`to_status`]; nowhere else decides a code.
//!
//! Business outcomes (a payment rejected for a reason) are values in the
//! reply, not errors: only a request that cannot be carried out at all
//! (malformed, not allowed, unknown, overloaded) becomes a status here.
//! Messages never carry key values or personal data.
//!
//! Every status carries google.rpc.Status details (tonic-types): an
//! `ErrorInfo` with domain [`ERROR_DOMAIN`] and a stable UPPER_SNAKE
//! reason naming the error (docs/PAYMENTS.md "Errors"), a `BadRequest`
//! naming the field of an INVALID_ARGUMENT, and a `RetryInfo` where
//! waiting helps.

use crate::runtime::SubmitError;
use ponte_directory::claims::ClaimError;
use ponte_directory::registry::DirectoryError;
use ponte_ledger::{AdminError, CycleError, EnvelopeError, LookupError, RecallError};
use ponte_wire::FieldError;
use std::collections::HashMap;
use std::time::Duration;
use tonic::Code;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

/// An error the services answer with a gRPC status.
pub trait ToStatus {
    fn to_status(self) -> Status;
}

/// The status for `error`, for `map_err`.
pub fn to_status(error: impl ToStatus) -> Status {
    error.to_status()
}

/// The domain of every `ErrorInfo` the switch gives.
pub const ERROR_DOMAIN: &str = "ponte.v1";

/// A status with its details: the `ErrorInfo` `reason`, and what `more` adds.
pub fn detailed(
    code: Code,
    message: impl Into<String>,
    reason: &'static str,
    more: impl FnOnce(&mut ErrorDetails),
) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    more(&mut details);
    Status::with_error_details(code, message, details)
}

/// A status whose only detail is its `ErrorInfo` reason.
pub fn error(code: Code, message: impl Into<String>, reason: &'static str) -> Status {
    detailed(code, message, reason, |_| {})
}

/// PERMISSION_DENIED, reason `PERMISSION_DENIED`.
pub fn denied(message: impl Into<String>) -> Status {
    error(Code::PermissionDenied, message, "PERMISSION_DENIED")
}

/// INVALID_ARGUMENT naming `field` in a `BadRequest`, reason `INVALID_FIELD`.
pub fn invalid(field: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    detailed(Code::InvalidArgument, message.clone(), "INVALID_FIELD", |d| {
        d.add_bad_request_violation(field, message);
    })
}

/// NOT_FOUND, reason `NOT_FOUND`.
pub fn not_found(message: impl Into<String>) -> Status {
    error(Code::NotFound, message, "NOT_FOUND")
}

/// UNAVAILABLE with a `RetryInfo` of `retry`, reason `reason`.
pub fn unavailable(message: impl Into<String>, reason: &'static str, retry: Duration) -> Status {
    detailed(Code::Unavailable, message, reason, |d| {
        d.set_retry_info(Some(retry));
    })
}

/// A request refused at the door (before the engine saw it) says so in
/// its metadata (`ponte-executed: no`): a client then knows the payment was
/// not executed. Any other UNAVAILABLE, a cut connection or a deadline
/// leaves a payment in doubt until its status is asked.
impl ToStatus for SubmitError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        let mut status = match self {
            SubmitError::Overloaded => detailed(Code::ResourceExhausted, message, "OVERLOADED", |d| {
                d.set_retry_info(Some(Duration::from_millis(100)));
            }),
            SubmitError::Stopped => unavailable(message, "STOPPING", Duration::from_secs(1)),
            SubmitError::StoreUnavailable => unavailable(message, "STORE_UNAVAILABLE", Duration::from_secs(1)),
        };
        status.metadata_mut().insert(ponte_wire::EXECUTED_METADATA, tonic::metadata::MetadataValue::from_static("no"));
        status
    }
}

/// A malformed field: the message names it and never echoes its value.
impl ToStatus for FieldError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        detailed(Code::InvalidArgument, message, "INVALID_FIELD", |d| {
            d.add_bad_request_violation(self.field, self.message);
        })
    }
}

impl ToStatus for RecallError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            RecallError::NotHeld(_) => {
                unavailable("the original is being archived; ask again", "ARCHIVE_PENDING", Duration::from_millis(100))
            }
            RecallError::OriginalNotFound(_) => error(Code::NotFound, message, "NOOR"),
            RecallError::NoRecall(_) => error(Code::NotFound, message, "NO_RECALL"),
            RecallError::WindowExpired(_) => error(Code::FailedPrecondition, message, "TM01"),
            RecallError::AlreadyReturned(_) => error(Code::FailedPrecondition, message, "ARDT"),
            RecallError::Suspended => error(Code::FailedPrecondition, message, "AG10"),
            RecallError::AlreadyRecalled(_) => error(Code::AlreadyExists, message, "ALREADY_RECALLED"),
            RecallError::Closed(_) => error(Code::FailedPrecondition, message, "RECALL_CLOSED"),
        }
    }
}

impl ToStatus for AdminError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            AdminError::UnknownParticipant(_) => error(Code::NotFound, message, "UNKNOWN_PARTICIPANT"),
            AdminError::AlreadyRegistered(_) => error(Code::AlreadyExists, message, "PARTICIPANT_EXISTS"),
            AdminError::InvalidName => invalid("name", message),
            AdminError::ReservedCode => invalid("code", message),
            AdminError::InvalidCategory => invalid("category", message),
            AdminError::NonPositiveAmount => invalid("amount", message),
            AdminError::NotPrefunded => error(Code::FailedPrecondition, message, "NOT_PREFUNDED"),
            AdminError::InsufficientFunds { .. } => error(Code::FailedPrecondition, message, "INSUFFICIENT_FUNDS"),
        }
    }
}

impl ToStatus for DirectoryError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            DirectoryError::InvalidKey(_) => invalid("key", message),
            DirectoryError::InvalidOwnerId(_) | DirectoryError::OwnerIdMismatch => invalid("owner.id", message),
            DirectoryError::OwnerName => invalid("owner.name", message),
            DirectoryError::AccountElsewhere => error(Code::PermissionDenied, message, "ACCOUNT_ELSEWHERE"),
            DirectoryError::NotHolder => error(Code::PermissionDenied, message, "NOT_KEY_HOLDER"),
            DirectoryError::KeyExists => error(Code::AlreadyExists, message, "KEY_EXISTS"),
            DirectoryError::NotFound => error(Code::NotFound, message, "KEY_NOT_FOUND"),
            DirectoryError::TooManyKeys { .. } => error(Code::FailedPrecondition, message, "TOO_MANY_KEYS"),
        }
    }
}

impl ToStatus for ClaimError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            ClaimError::Directory(e) => e.to_status(),
            ClaimError::RandomKey | ClaimError::NationalIdOwnership | ClaimError::PortabilityOwner => {
                error(Code::InvalidArgument, message, "CLAIM_NOT_ALLOWED")
            }
            ClaimError::AlreadyHeld => error(Code::FailedPrecondition, message, "KEY_ALREADY_HELD"),
            ClaimError::WrongStatus(_) => error(Code::FailedPrecondition, message, "CLAIM_WRONG_STATUS"),
            ClaimError::ClaimInProgress => error(Code::AlreadyExists, message, "CLAIM_IN_PROGRESS"),
            ClaimError::UnknownClaim => error(Code::NotFound, message, "UNKNOWN_CLAIM"),
            ClaimError::WrongParty(_) => error(Code::PermissionDenied, message, "CLAIM_WRONG_PARTY"),
        }
    }
}

/// A rate-limited lookup says when to try again in `retry-after-ms`.
impl ToStatus for LookupError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            LookupError::NotFound => error(Code::NotFound, message, "KEY_NOT_FOUND"),
            LookupError::UserLimited { retry_after_ms } | LookupError::ParticipantLimited { retry_after_ms } => {
                let reason = if matches!(self, LookupError::UserLimited { .. }) {
                    "END_USER_LOOKUPS_LIMITED"
                } else {
                    "PARTICIPANT_LOOKUPS_LIMITED"
                };
                let wait = Duration::from_millis(retry_after_ms.max(0) as u64);
                let mut status = detailed(Code::ResourceExhausted, message, reason, |d| {
                    d.set_retry_info(Some(wait));
                });
                if let Ok(value) = retry_after_ms.to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", value);
                }
                status
            }
            LookupError::EndUser(_) => invalid("lookup_by", message),
        }
    }
}

impl ToStatus for CycleError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            CycleError::Unknown(_) => error(Code::NotFound, message, "UNKNOWN_CYCLE"),
            CycleError::NotClosed(..) => error(Code::FailedPrecondition, message, "CYCLE_NOT_CLOSED"),
            CycleError::Netting(_) | CycleError::Archived(_) => error(Code::Internal, message, "CYCLE_REPORT_FAILED"),
        }
    }
}

impl ToStatus for EnvelopeError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            EnvelopeError::AgencyNotActive(_) => error(Code::PermissionDenied, message, "AGENCY_NOT_ACTIVE"),
            EnvelopeError::PayingAccountNotAgency => {
                error(Code::PermissionDenied, message, "PAYING_ACCOUNT_NOT_AGENCY")
            }
            EnvelopeError::ReferenceReused(_) => error(Code::AlreadyExists, message, "ENVELOPE_REFERENCE_REUSED"),
            EnvelopeError::Unknown(_) => error(Code::NotFound, message, "UNKNOWN_ENVELOPE"),
            EnvelopeError::AlreadySealed => error(Code::FailedPrecondition, message, "ENVELOPE_SEALED"),
            _ => error(Code::InvalidArgument, message, "INVALID_ENVELOPE"),
        }
    }
}
