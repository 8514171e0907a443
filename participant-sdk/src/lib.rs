//! The Ponte participant SDK: what a bank or wallet embeds to send and
//! receive instant payments through a Ponte switch.
//!
//! Everything goes over gRPC with mutual TLS: the participant's client
//! certificate (issued by the switch operator) says who it is.
//!
//! ```no_run
//! use ponte_sdk::{Client, Identity, Payment, PaymentOutcome};
//! use ponte_domain::{Account, AccountType, Amount, ParticipantId};
//!
//! # async fn run() -> Result<(), ponte_sdk::Error> {
//! let me: ParticipantId = "10000001".parse().unwrap();
//! let identity = Identity::from_dev_dir("ponte-data/certs".as_ref(), "10000001")?;
//! let client = Client::connect("https://127.0.0.1:7700", me, &identity).await?;
//! let payment = Payment {
//!     id: client.new_payment_id(),
//!     payer: Account::new(me, "1", "123456", AccountType::Checking).unwrap(),
//!     payee: Account::new("10000002".parse().unwrap(), "1", "654321", AccountType::Checking).unwrap(),
//!     amount: Amount::parse_positive("25.00").unwrap(),
//!     remittance: "lunch".into(),
//! };
//! match client.submit(&payment).await? {
//!     PaymentOutcome::Settled { .. } => println!("paid"),
//!     PaymentOutcome::Rejected { reason } if reason.is_transient() => println!("try again later: {reason}"),
//!     PaymentOutcome::Rejected { reason } => println!("refused: {reason}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`Client`]: submit (one at a time or streamed), status, returns. A
//!   call cut after it may have reached the switch is resolved by id before
//!   it returns ([`Client::resolve`], [`Error::InDoubt`]).
//! - [`InboxHandler`] and [`Client::serve_inbox`]: receive payments and answer them.
//! - [`recall`]: recalls of settled payments (camt.056): [`Client::recall`],
//!   [`Client::refuse_recall`], [`Client::get_recall`].
//! - [`directory`]: the alias directory: keys, lookups, reconciliation, claims;
//!   [`Client::submit_to_key`] pays a key.
//! - [`disbursement`]: bulk disbursement for paying agencies: envelopes
//!   from a CSV file, progress, per-item outcomes and the final report.
//! - [`OperatorClient`]: the central bank's administration calls.
//! - [`Error`]: protocol and transport errors. Business outcomes are values
//!   ([`PaymentOutcome`] with a [`ReasonCode`]), not errors.
//! - [`wire`]: conversions between wire messages and domain types.

mod client;
pub mod directory;
pub mod disbursement;
mod error;
mod in_doubt;
mod inbox;
pub mod iso20022;
mod operator;
pub mod recall;
pub use ponte_wire as wire;

pub use client::{
    CYCLE_TRANSFERS_PAGE_MAX, Client, CycleTransfersPage, Identity, KeyPayment, Payment, PaymentOutcome, Return,
    StreamedResult, SubmitReceiver, SubmitSender,
};
pub use error::Error;
pub use in_doubt::IN_DOUBT_WAIT_DEFAULT;
pub use inbox::{InboxHandle, InboxHandler, IncomingPayment, ReturnNotice};
pub use operator::{CycleInfo, OperatorClient, ParticipantInfo, ReportFormat};
pub use ponte_directory::claims::{ClaimAction, ClaimKind, ClaimStatus};
pub use ponte_directory::keys::{Country, Key, KeyType};
pub use ponte_directory::registry::{Owner, OwnerKind};
pub use ponte_domain::{
    Account, AccountType, Amount, Decision, EndToEndId, Liquidity, ParticipantId, ParticipantStatus, ReasonCode,
    TransferState, TransferView,
};
pub use ponte_settlement::report::CycleStatus;
pub use recall::{Recall, RecallState};
