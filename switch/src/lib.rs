//! The Ponte switch.
//!
//! # Layout
//! The payment engine itself is the `ponte-ledger` crate (pure, no I/O);
//! this crate drives it and connects it to disks and networks.
//!
//! - [`store`]: the storage trait every backend implements (a durable,
//!   append-only journal of engine events), with the embedded backend
//!   ([`store::redb`], written in groups with one fsync each) and the
//!   Apache Cassandra / ScyllaDB backend ([`store::cql`], one fenced
//!   writer node and any number of standbys).
//! - [`runtime`]: the engine thread and the journal thread that drive the
//!   engine over a bounded queue and make each batch durable before anyone
//!   hears of it.
//! - [`grpc`]: the gRPC services (payments, operator, directory,
//!   disbursements), one file each, and the one table from errors to
//!   status codes.
//! - [`iso20022`]: the ISO 20022 gateway (pacs.008/002/004/028 in,
//!   pacs.008/002/004 and camt.054 out) over HTTPS with the same mTLS.
//! - [`net`]: the TLS front door (handshakes with CRL checking, revoked
//!   connections closed) and mTLS identities (who a certificate names, the
//!   dev certificate authority `ponte serve` creates on first start).
//! - [`metrics`]: Prometheus metrics (throughput, latency, queue depths, rejects by reason).
//! - [`server`]: wiring: configuration, start-up, shutdown.

pub mod grpc;
pub mod iso20022;
pub mod metrics;
pub mod net;
pub mod runtime;
pub mod server;
pub mod store;
