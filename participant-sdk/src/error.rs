//! SDK errors: transport and protocol faults.

use tonic::Code;

/// A call did not produce a business outcome. See [`Error::is_retryable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot connect to the switch at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("cannot read the certificate files: {0}")]
    Identity(String),
    #[error("the switch refused a malformed request: {0}")]
    InvalidArgument(String),
    #[error("the switch did not accept the client certificate: {0}")]
    Unauthenticated(String),
    #[error("not allowed: {0}")]
    PermissionDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("the switch is at capacity; retry with backoff: {0}")]
    Overloaded(String),
    #[error("the switch is unavailable; retry later: {0}")]
    Unavailable(String),
    #[error("the switch answered something this SDK cannot read: {0}")]
    Protocol(String),
    #[error(
        "payment {id} is in doubt: the switch could not be asked its outcome in time ({detail}); it was made at \
         most once: ask its status later, or send it again with the same end-to-end id and content"
    )]
    InDoubt { id: String, detail: String },
    #[error("gRPC error {code:?}: {message}")]
    Other { code: Code, message: String },
}

impl Error {
    /// Whether the same call may succeed if repeated later. For a payment,
    /// repeat it with the same end-to-end id: the switch never executes one
    /// twice.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Overloaded(_) | Error::Unavailable(_) | Error::Connect { .. } | Error::InDoubt { .. })
    }

    pub(crate) fn from_item(code: i32, message: String) -> Error {
        Error::from(tonic::Status::new(Code::from(code), message))
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Error {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Error::InvalidArgument(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::ResourceExhausted => Error::Overloaded(message),
            Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => Error::Unavailable(message),
            code => Error::Other { code, message },
        }
    }
}

impl From<crate::wire::FieldError> for Error {
    fn from(error: crate::wire::FieldError) -> Error {
        Error::Protocol(error.to_string())
    }
}
