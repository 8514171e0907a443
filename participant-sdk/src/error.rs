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

/// Why the TLS handshake was refused over a certificate, if that is what
/// `error` (or an error under it) says: the alert the switch sent about
/// this client's certificate, or this client's verdict on the switch's.
/// Such a failure is not retryable: the same certificate fails again.
pub(crate) fn refused_certificate(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::AlertDescription as Alert;
    let mut current = Some(error);
    while let Some(e) = current {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|inner| inner.downcast_ref())
        });
        // tokio-rustls hands rustls's error up as the text of an I/O
        // error ("received fatal alert: CertificateExpired"): read that too.
        let text = e.downcast_ref::<std::io::Error>().map(|io| io.to_string()).unwrap_or_default();
        if let Some(alert) = text.strip_prefix("received fatal alert: ").filter(|a| CERTIFICATE_ALERTS.contains(a)) {
            return Some(refused(alert));
        }
        if let Some(why) = text.strip_prefix("invalid peer certificate: ") {
            return Some(invalid_switch_certificate(why));
        }
        match tls {
            Some(rustls::Error::AlertReceived(
                alert @ (Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                | Alert::CertificateRequired),
            )) => return Some(refused(&format!("{alert:?}"))),
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(invalid_switch_certificate(&format!("{why:?}")));
            }
            _ => current = e.source(),
        }
    }
    None
}

/// The TLS alerts that mean "your certificate is refused", by rustls's names.
const CERTIFICATE_ALERTS: [&str; 8] = [
    "BadCertificate",
    "UnsupportedCertificate",
    "CertificateRevoked",
    "CertificateExpired",
    "CertificateUnknown",
    "UnknownCA",
    "AccessDenied",
    "CertificateRequired",
];

fn refused(alert: &str) -> String {
    format!(
        "the switch refused this participant's certificate in the TLS handshake ({alert}): an expired, not yet valid, \
         revoked or unknown certificate fails the same way every time; ask the operator for a new one"
    )
}

fn invalid_switch_certificate(why: &str) -> String {
    format!("the switch's certificate is not valid for this connection ({why}): check the CA file and the server name")
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Error {
        if let Some(why) = refused_certificate(&status) {
            return Error::Unauthenticated(why);
        }
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
