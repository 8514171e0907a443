//! The network edge: who a connection is, and which connections get in.
//!
//! - [`tls`]: mTLS identities: who a client certificate names, and the dev
//!   certificate authority `ponte serve` creates on first start.
//! - [`acceptor`]: the TLS front door: handshakes with CRL checking, and
//!   connections closed when their certificate is revoked.

pub mod acceptor;
pub mod tls;
