//! mTLS identities.
//!
//! Every connection to the switch is mutually authenticated TLS (rustls via
//! tonic). The client certificate must chain to the switch's certificate
//! authority, and its subject common name says who is calling: an 8-digit
//! participant code, or `operator` for the central bank.
//!
//! For the quickstart, [`DevPki::ensure`] creates a development CA and the
//! certificates the switch, the operator and a few demo participants need.
//! A production deployment brings its own CA and points the configuration
//! at its files instead.

use ponte_domain::ParticipantId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use tonic::{Request, Status};

/// The common name of the operator's certificate.
pub const OPERATOR_NAME: &str = "operator";

/// Who is calling, from the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Participant(ParticipantId),
    Operator,
}

/// Reads the caller from the verified client certificate of a request.
pub fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    let certs = request.peer_certs().ok_or_else(|| {
        crate::grpc::status::error(
            tonic::Code::Unauthenticated,
            "a client certificate is required",
            "NO_CLIENT_CERTIFICATE",
        )
    })?;
    let leaf = certs.first().ok_or_else(|| {
        crate::grpc::status::error(
            tonic::Code::Unauthenticated,
            "a client certificate is required",
            "NO_CLIENT_CERTIFICATE",
        )
    })?;
    identity_of(leaf.as_ref())
}

/// The caller a DER certificate names (its subject common name).
pub fn identity_of(der: &[u8]) -> Result<Caller, Status> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| {
        crate::grpc::status::error(
            tonic::Code::Unauthenticated,
            "client certificate cannot be parsed",
            "BAD_CLIENT_CERTIFICATE",
        )
    })?;
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| crate::grpc::status::denied("client certificate has no common name"))?;
    if name == OPERATOR_NAME {
        return Ok(Caller::Operator);
    }
    name.parse::<ParticipantId>().map(Caller::Participant).map_err(|_| {
        crate::grpc::status::denied("client certificate common name is neither a participant code nor the operator")
    })
}

/// Requires a participant caller.
pub fn participant_of<T>(request: &Request<T>) -> Result<ParticipantId, Status> {
    match caller_of(request)? {
        Caller::Participant(id) => Ok(id),
        Caller::Operator => {
            Err(crate::grpc::status::denied("this call is for participants; the operator certificate cannot make it"))
        }
    }
}

/// Requires the operator.
pub fn require_operator<T>(request: &Request<T>) -> Result<(), Status> {
    match caller_of(request)? {
        Caller::Operator => Ok(()),
        Caller::Participant(_) => Err(crate::grpc::status::denied("operator calls need the operator certificate")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The files of a development PKI, in one directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub dir: PathBuf,
}

/// Certificate and key of one party, as PEM files.
#[derive(Debug, Clone)]
pub struct IdentityFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevPki {
    pub fn new(dir: impl Into<PathBuf>) -> DevPki {
        DevPki { dir: dir.into() }
    }

    /// Where `ponte cert revoke` writes the CA's revocation list.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// The certificate and key of `name` (`server`, `operator`, or a participant code).
    pub fn identity(&self, name: &str) -> IdentityFiles {
        IdentityFiles { cert: self.dir.join(format!("{name}.pem")), key: self.dir.join(format!("{name}.key")) }
    }

    pub fn exists(&self) -> bool {
        self.ca_cert().exists() && self.ca_key().exists()
    }

    /// Creates the CA, server and operator certificates if they are missing,
    /// and a certificate for each participant that has none. Returns whether
    /// anything was created.
    pub fn ensure(&self, server_names: &[String], participants: &[ParticipantId]) -> Result<bool, PkiError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| PkiError::Io { path: self.dir.clone(), source })?;
        let mut created = false;
        if !self.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name("Ponte development CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let cert = params.self_signed(&key)?;
            write(&self.ca_cert(), cert.pem().as_bytes(), false)?;
            write(&self.ca_key(), key.serialize_pem().as_bytes(), true)?;
            created = true;
        }
        if !self.identity("server").cert.exists() {
            self.issue("server", server_names.to_vec(), ExtendedKeyUsagePurpose::ServerAuth)?;
            created = true;
        }
        if !self.identity(OPERATOR_NAME).cert.exists() {
            self.issue(OPERATOR_NAME, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
            created = true;
        }
        for participant in participants {
            let name = participant.to_string();
            if !self.identity(&name).cert.exists() {
                self.issue(&name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
                created = true;
            }
        }
        Ok(created)
    }

    /// The CA, from its certificate and key files, to sign with.
    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let ca_key = KeyPair::from_pem(&read(&self.ca_key())?)?;
        Ok(Issuer::from_ca_cert_pem(&read(&self.ca_cert())?, ca_key)?)
    }

    /// Issues a certificate for `common_name`, signed by this CA.
    pub fn issue(
        &self,
        common_name: &str,
        subject_alt_names: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<IdentityFiles, PkiError> {
        let issuer = self.issuer()?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(subject_alt_names)?;
        params.distinguished_name = name(common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.signed_by(&key, &issuer)?;
        let files = self.identity(common_name);
        write(&files.cert, cert.pem().as_bytes(), false)?;
        write(&files.key, key.serialize_pem().as_bytes(), true)?;
        Ok(files)
    }
}

impl DevPki {
    /// Revokes the certificate issued to `common_name` (a participant code
    /// or `operator`): adds its serial number to the CA's revocation list,
    /// written atomically to [`DevPki::crl`], where a running switch picks
    /// it up within seconds. Returns how many certificates the list now
    /// revokes. Revoking twice changes nothing.
    pub fn revoke(&self, common_name: &str) -> Result<usize, PkiError> {
        let cert_path = self.identity(common_name).cert;
        let pem = read(&cert_path)?;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| PkiError::Invalid { path: cert_path.clone(), reason: e.to_string() })?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| PkiError::Invalid { path: cert_path.clone(), reason: e.to_string() })?;
        let serial = cert.raw_serial().to_vec();

        // What the current list revokes, and its number.
        let crl_path = self.crl();
        let (mut revoked, mut number) = (Vec::<(Vec<u8>, time::OffsetDateTime)>::new(), 0_u64);
        if crl_path.exists() {
            let pem = read(&crl_path)?;
            let der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| PkiError::Invalid { path: crl_path.clone(), reason: e.to_string() })?;
            let (_, crl) = x509_parser::parse_x509_crl(der.as_ref())
                .map_err(|e| PkiError::Invalid { path: crl_path.clone(), reason: e.to_string() })?;
            number = crl.crl_number().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
            for entry in crl.iter_revoked_certificates() {
                let at = time::OffsetDateTime::from_unix_timestamp(entry.revocation_date.timestamp())
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                revoked.push((entry.raw_serial().to_vec(), at));
            }
        }
        let now = time::OffsetDateTime::now_utc();
        if !revoked.iter().any(|(s, _)| *s == serial) {
            revoked.push((serial, now));
        }
        let issuer = self.issuer()?;
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(7),
            crl_number: rcgen::SerialNumber::from(number + 1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|(serial, at)| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(serial),
                    revocation_time: *at,
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&issuer)?;
        // Written beside, then renamed: the switch never reads half a list.
        let partial = self.dir.join("crl.pem.partial");
        write(&partial, crl.pem()?.as_bytes(), false)?;
        std::fs::rename(&partial, &crl_path).map_err(|source| PkiError::Io { path: crl_path.clone(), source })?;
        Ok(revoked.len())
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Ponte");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io { path: path.to_path_buf(), source })
}

fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    let io = |source| PkiError::Io { path: path.to_path_buf(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = secret;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_holder() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::new(dir.path());
        let p = ParticipantId::new(12345678).unwrap();
        assert!(pki.ensure(&["localhost".into()], &[p]).unwrap());
        assert!(!pki.ensure(&["localhost".into()], &[p]).unwrap(), "second run creates nothing");
        let der = |name: &str| {
            let pem = std::fs::read(pki.identity(name).cert).unwrap();
            let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
            parsed.contents
        };
        assert_eq!(identity_of(&der("12345678")).unwrap(), Caller::Participant(p));
        assert_eq!(identity_of(&der("operator")).unwrap(), Caller::Operator);
        assert_eq!(identity_of(&der("server")).unwrap_err().code(), tonic::Code::PermissionDenied);
        assert_eq!(identity_of(b"not a certificate").unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
