//! Ponte's shared domain: the small, dependency-light types that every other
//! crate speaks — exact money, participant codes, end-to-end ids, accounts and
//! the reason codes that carry business outcomes.
//!
//! # Layout
//! - [`money`]: [`Amount`], an exact count of minor units with checked
//!   arithmetic, parsed from and printed as decimal strings.
//! - [`ids`]: [`ParticipantId`] (the 8-digit participant code) and
//!   [`EndToEndId`] (the client-made id of one payment or return).
//! - [`account`]: [`Account`], the branch/number/type a payment names.
//! - [`reason`]: [`ReasonCode`], ISO 20022-style codes, each transient or final.
//! - [`transfer`]: [`TransferState`] and its single transition function.
//!
//! Nothing here does I/O or reads a clock: callers pass the time in.

pub mod account;
pub mod ids;
pub mod money;
pub mod participant;
pub mod reason;
pub mod transfer;

pub use account::{Account, AccountError, AccountType};
pub use ids::{EndToEndId, IdError, IdKind, ParticipantId};
pub use money::{Amount, AmountError, CURRENCY};
pub use participant::{Liquidity, ParticipantStatus};
pub use reason::ReasonCode;
pub use transfer::{Decision, TransferEvent, TransferState, TransferView};

/// Milliseconds since the Unix epoch (UTC). Time is always an input in Ponte:
/// the engine never reads a clock, so tests and replays control it.
pub type TimestampMs = i64;
