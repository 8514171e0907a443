//! The simulated banks' inboxes.

use ponte_sdk::{Decision, InboxHandler, IncomingPayment, ReasonCode};
use rand::Rng;
use std::time::Duration;

/// Accepts every payment except a fraction, after an optional think time.
#[derive(Debug, Clone)]
pub struct SimulatedPayee {
    /// Fraction of payments rejected with AC03 (unknown account).
    pub reject_rate: f64,
    /// How long the bank's core system takes to decide.
    pub think_time: Duration,
}

impl InboxHandler for SimulatedPayee {
    async fn on_payment(&self, _payment: IncomingPayment) -> Decision {
        if !self.think_time.is_zero() {
            tokio::time::sleep(self.think_time).await;
        }
        if self.reject_rate > 0.0 && rand::rng().random::<f64>() < self.reject_rate {
            Decision::Reject(ReasonCode::InvalidCreditorAccount)
        } else {
            Decision::Accept
        }
    }
}
