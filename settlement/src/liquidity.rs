//! Liquidity: how far a participant may send, under the limit the central
//! bank set for it.
//!
//! A participant's limit works one of two ways ([`Liquidity`]): a net
//! debit cap backed by collateral (deferred net settlement), or a
//! prefunded balance (gross settlement). Either way a payment is reserved
//! only if it fits in what is [`available`](Exposure::available), so no
//! payer can go past its limit.

use ponte_domain::{Amount, Liquidity};

/// A participant's standing against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    pub liquidity: Liquidity,
    /// How far below zero `position - reserved` may go (net debit cap).
    pub net_debit_cap: Amount,
    /// Money held at the switch's settlement account (prefunded).
    pub balance: Amount,
    /// Settled credits minus settled debits in cycles not yet settled.
    pub position: Amount,
    /// Held by payments awaiting their payee.
    pub reserved: Amount,
}

impl Exposure {
    /// What can still be sent: `net_debit_cap + position - reserved` (net
    /// debit cap) or `balance + position - reserved` (prefunded); zero if
    /// that does not fit the amount range.
    #[inline] // on every payment's path, across crates
    pub fn available(&self) -> Amount {
        let base = match self.liquidity {
            Liquidity::NetDebitCap => self.net_debit_cap,
            Liquidity::Prefunded => self.balance,
        };
        base.checked_add(self.position).and_then(|a| a.checked_sub(self.reserved)).unwrap_or(Amount::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_limit_counts_its_own_base() {
        let units = Amount::units;
        let mut exposure = Exposure {
            liquidity: Liquidity::NetDebitCap,
            net_debit_cap: units(100),
            balance: units(7),
            position: units(-30),
            reserved: units(20),
        };
        assert_eq!(exposure.available(), units(50));
        exposure.liquidity = Liquidity::Prefunded;
        assert_eq!(exposure.available(), units(-43));
    }
}
