//! Ponte's load generator: a simulated country driving a switch over the
//! real interface (gRPC, mTLS), with latency measured end to end as the payer
//! sees it.
//!
//! # Layout
//! - [`country`]: participants with skewed volume (a few big banks, many small wallets).
//! - [`drive`]: closed-loop and open-loop load over submit streams or unary calls.
//! - [`iso`]: `--iso20022` mode: the same banks speaking ISO 20022 XML to the gateway.
//! - [`keys`]: populating the directory with one phone key per customer.
//! - [`payee`]: the simulated banks' inboxes (reject rate, think time).
//! - [`echo`]: a trivial echo service on the same tonic + TLS stack: the
//!   ceiling the switch is measured against.
//! - [`report`]: the JSON report and the SVG chart.
//! - [`soak`]: soak mode: the switch as a child process, its memory, disk
//!   and restart time over a long run.

pub mod country;
pub mod drive;
pub mod echo;
pub mod envelope;
pub mod iso;
pub mod keys;
pub mod payee;
mod recorder;
pub mod report;
pub mod soak;
