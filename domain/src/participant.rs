//! What the switch, the operator and participants all say about a
//! participant: whether it may act, and how its liquidity is bounded.

/// Whether a participant may send and receive payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ParticipantStatus {
    Active,
    Suspended,
}

/// The two ways a central bank bounds a participant's exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Liquidity {
    /// Deferred net settlement (UPI, UK FPS, Mojaloop): the position may go
    /// down to `-net_debit_cap`, backed by collateral.
    NetDebitCap,
    /// Prefunded (Pix, TIPS, FedNow): the participant can send only what
    /// it has deposited plus what it has received.
    Prefunded,
}
