//! The one table from errors to gRPC status codes. Every service answers
//! an error through [`to_status`]; nowhere else decides a code.
//!
//! Business outcomes (a payment rejected for a reason) are values in the
//! reply, not errors: only a request that cannot be carried out at all
//! (malformed, not allowed, unknown, overloaded) becomes a status here.
//! Messages never carry key values or personal data.

use crate::runtime::SubmitError;
use ponte_directory::claims::ClaimError;
use ponte_directory::registry::DirectoryError;
use ponte_ledger::{AdminError, CycleError, EnvelopeError, LookupError};
use ponte_wire::FieldError;
use tonic::Status;

/// An error the services answer with a gRPC status.
pub trait ToStatus {
    fn to_status(self) -> Status;
}

/// The status for `error`, for `map_err`.
pub fn to_status(error: impl ToStatus) -> Status {
    error.to_status()
}

/// A request refused at the door (before the engine saw it) says so in
/// its metadata (`ponte-executed: no`): a client then knows the payment was
/// not executed. Any other UNAVAILABLE, a cut connection or a deadline
/// leaves a payment in doubt until its status is asked.
impl ToStatus for SubmitError {
    fn to_status(self) -> Status {
        let mut status = match self {
            SubmitError::Overloaded => Status::resource_exhausted(self.to_string()),
            SubmitError::Stopped | SubmitError::StoreUnavailable => Status::unavailable(self.to_string()),
        };
        status.metadata_mut().insert(ponte_wire::EXECUTED_METADATA, tonic::metadata::MetadataValue::from_static("no"));
        status
    }
}

/// A malformed field: the message names it and never echoes its value.
impl ToStatus for FieldError {
    fn to_status(self) -> Status {
        Status::invalid_argument(self.to_string())
    }
}

impl ToStatus for AdminError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            AdminError::UnknownParticipant(_) => Status::not_found(message),
            AdminError::AlreadyRegistered(_) => Status::already_exists(message),
            AdminError::InvalidName
            | AdminError::ReservedCode
            | AdminError::InvalidCategory
            | AdminError::NonPositiveAmount => Status::invalid_argument(message),
            AdminError::NotPrefunded | AdminError::InsufficientFunds { .. } => Status::failed_precondition(message),
        }
    }
}

impl ToStatus for DirectoryError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            DirectoryError::InvalidKey(_)
            | DirectoryError::InvalidOwnerId(_)
            | DirectoryError::OwnerIdMismatch
            | DirectoryError::OwnerName => Status::invalid_argument(message),
            DirectoryError::AccountElsewhere | DirectoryError::NotHolder => Status::permission_denied(message),
            DirectoryError::KeyExists => Status::already_exists(message),
            DirectoryError::NotFound => Status::not_found(message),
            DirectoryError::TooManyKeys { .. } => Status::failed_precondition(message),
        }
    }
}

impl ToStatus for ClaimError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            ClaimError::Directory(e) => e.to_status(),
            ClaimError::RandomKey | ClaimError::NationalIdOwnership | ClaimError::PortabilityOwner => {
                Status::invalid_argument(message)
            }
            ClaimError::AlreadyHeld | ClaimError::WrongStatus(_) => Status::failed_precondition(message),
            ClaimError::ClaimInProgress => Status::already_exists(message),
            ClaimError::UnknownClaim => Status::not_found(message),
            ClaimError::WrongParty(_) => Status::permission_denied(message),
        }
    }
}

/// A rate-limited lookup says when to try again in `retry-after-ms`.
impl ToStatus for LookupError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            LookupError::NotFound => Status::not_found(message),
            LookupError::UserLimited { retry_after_ms } | LookupError::ParticipantLimited { retry_after_ms } => {
                let mut status = Status::resource_exhausted(message);
                if let Ok(value) = retry_after_ms.to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", value);
                }
                status
            }
            LookupError::EndUser(_) => Status::invalid_argument(message),
        }
    }
}

impl ToStatus for CycleError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            CycleError::Unknown(_) => Status::not_found(message),
            CycleError::NotClosed(..) => Status::failed_precondition(message),
            CycleError::Netting(_) | CycleError::Archived(_) => Status::internal(message),
        }
    }
}

impl ToStatus for EnvelopeError {
    fn to_status(self) -> Status {
        let message = self.to_string();
        match self {
            EnvelopeError::AgencyNotActive(_) | EnvelopeError::PayingAccountNotAgency => {
                Status::permission_denied(message)
            }
            EnvelopeError::ReferenceReused(_) => Status::already_exists(message),
            EnvelopeError::Unknown(_) => Status::not_found(message),
            EnvelopeError::AlreadySealed => Status::failed_precondition(message),
            _ => Status::invalid_argument(message),
        }
    }
}
