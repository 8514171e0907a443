//! The gRPC services, one file each, and the one table from errors to
//! status codes.
//!
//! Each call authenticates the caller from its client certificate, parses
//! and bounds every field (a malformed one is INVALID_ARGUMENT naming the
//! field), and hands one engine operation to the runtime. Business outcomes
//! come back as values; errors become statuses only in [`status`].
//!
//! - [`payments`]: `ponte.v1.Payments` (participants).
//! - [`operator`]: `ponte.v1.Operator` (the central bank).
//! - [`directory`]: `ponte.v1.Directory` (keys, lookups, claims).
//! - [`disbursements`]: `ponte.v1.Disbursements` (paying agencies).

pub(crate) mod archived;
pub mod directory;
pub mod disbursements;
pub mod operator;
mod paging;
pub mod payments;
pub(crate) mod recalls;
pub mod status;

pub use directory::DirectoryService;
pub use disbursements::DisbursementService;
pub use operator::OperatorService;
pub use payments::PaymentsService;
pub use ponte_domain::CURRENCY;

/// Bounds on what one call or stream may ask of the switch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Payments in one `SubmitBatch` (default 1,024).
    pub submit_batch_max: usize,
    /// Payments one submit stream may have awaiting their outcome (default 16,384).
    pub stream_inflight_max: usize,
    /// How long a submitted batch may wait for room under
    /// `stream_inflight_max` before its payments are answered
    /// RESOURCE_EXHAUSTED instead of queued (default 250 ms): an overloaded
    /// switch answers at once rather than letting senders' queues grow.
    /// The batches behind a refused one are admitted only if there is room
    /// at once, so waits never add up.
    pub stream_admission_wait_ms: u64,
    /// Answers in one `InboxUp` (default 4,096).
    pub answers_batch_max: usize,
    /// Largest message the switch decodes, in bytes (default 4 MiB).
    pub message_bytes_max: usize,
    /// Inbox messages waiting to be sent on one inbox stream (default 4,096;
    /// each carries the frames of one journal group). A payee that falls
    /// this far behind loses frames: its payments time out safely.
    pub inbox_queue_max: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            submit_batch_max: 1_024,
            stream_inflight_max: 16_384,
            stream_admission_wait_ms: 250,
            answers_batch_max: 4_096,
            message_bytes_max: 4 * 1024 * 1024,
            inbox_queue_max: 4_096,
        }
    }
}
