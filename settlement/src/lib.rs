//! Settlement for the central bank: multilateral netting.
//!
//! Netting is a pure function from the transfers of a settlement cycle to
//! each participant's gross totals and net position. Every transfer moves
//! the same amount out of one participant and into another, so the net
//! positions sum to exactly zero; [`net`] asserts it before returning (a
//! report that does not balance must never reach an RTGS).
//!
//! # Layout
//! - [`liquidity`]: what a participant can still send under its limit
//!   (net debit cap or prefunded balance).
//! - [`Positions`]: net positions as movements arrive (the engine keeps one
//!   per cycle, and the participants' positions are what unsettled cycles
//!   net to).
//! - [`net`]: per participant gross sent/received counts and values, net
//!   position, and the settlement instructions to post. It recomputes the
//!   nets from the cycle's movements on purpose: the report must be
//!   checkable from its movements alone, not from the engine's running
//!   totals.
//! - [`report`]: a cycle's report (JSON, CSV, camt.053) and its digest.
//!
//! The switch's engine (`ponte-ledger`) keeps the cycles and the
//! participants' limits, and calls into this crate for the rules.

pub mod liquidity;
pub mod report;

use ponte_domain::{Amount, ParticipantId};
use std::collections::BTreeMap;

/// One settled movement of a cycle: a payment, or a return (whose payer is
/// the original payee).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub payer: ParticipantId,
    pub payee: ParticipantId,
    pub amount: Amount,
}

/// A participant's line in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub participant: ParticipantId,
    pub sent_count: u64,
    pub sent_value: Amount,
    pub received_count: u64,
    pub received_value: Amount,
    /// `received_value - sent_value`: positive means the participant is owed.
    pub net_position: Amount,
}

/// What to post in the RTGS for one participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction {
    /// The participant's settlement account is debited.
    Pay { participant: ParticipantId, amount: Amount },
    /// The participant's settlement account is credited.
    Receive { participant: ParticipantId, amount: Amount },
}

/// The result of netting a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netting {
    /// Ordered by participant code.
    pub totals: Vec<Totals>,
    pub movements: u64,
    /// Sum of all movements (the gross value the cycle settled).
    pub gross_value: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NettingError {
    #[error("a movement has a non-positive amount")]
    NonPositive,
    #[error("a movement pays its own payer")]
    SelfPayment,
    #[error("totals overflow the amount range")]
    Overflow,
}

/// Net positions (credits minus debits) per participant, as movements
/// arrive. They always sum to zero: every movement takes from one
/// participant exactly what it gives another.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Positions(BTreeMap<ParticipantId, Amount>);

impl Positions {
    /// Debits the payer and credits the payee.
    #[inline] // on every settlement's path, across crates
    pub fn add(&mut self, m: &Movement) -> Result<(), NettingError> {
        let debit = self.0.entry(m.payer).or_insert(Amount::ZERO);
        *debit = debit.checked_sub(m.amount).ok_or(NettingError::Overflow)?;
        let credit = self.0.entry(m.payee).or_insert(Amount::ZERO);
        *credit = credit.checked_add(m.amount).ok_or(NettingError::Overflow)?;
        Ok(())
    }

    /// A participant's net position (zero if it never moved).
    pub fn get(&self, participant: ParticipantId) -> Amount {
        self.0.get(&participant).copied().unwrap_or(Amount::ZERO)
    }

    /// Every participant that moved, by code, with its net position.
    pub fn iter(&self) -> impl Iterator<Item = (ParticipantId, Amount)> + '_ {
        self.0.iter().map(|(p, a)| (*p, *a))
    }
}

/// Nets a cycle's movements. Asserts that the net positions sum to zero.
pub fn net(movements: impl IntoIterator<Item = Movement>) -> Result<Netting, NettingError> {
    let mut lines: BTreeMap<ParticipantId, Totals> = BTreeMap::new();
    let mut count = 0_u64;
    let mut gross = Amount::ZERO;
    let blank = |participant| Totals {
        participant,
        sent_count: 0,
        sent_value: Amount::ZERO,
        received_count: 0,
        received_value: Amount::ZERO,
        net_position: Amount::ZERO,
    };
    for m in movements {
        if m.amount <= Amount::ZERO {
            return Err(NettingError::NonPositive);
        }
        if m.payer == m.payee {
            return Err(NettingError::SelfPayment);
        }
        count += 1;
        gross = gross.checked_add(m.amount).ok_or(NettingError::Overflow)?;
        let payer = lines.entry(m.payer).or_insert_with(|| blank(m.payer));
        payer.sent_count += 1;
        payer.sent_value = payer.sent_value.checked_add(m.amount).ok_or(NettingError::Overflow)?;
        let payee = lines.entry(m.payee).or_insert_with(|| blank(m.payee));
        payee.received_count += 1;
        payee.received_value = payee.received_value.checked_add(m.amount).ok_or(NettingError::Overflow)?;
    }
    let mut sum: i128 = 0;
    for line in lines.values_mut() {
        line.net_position = line.received_value.checked_sub(line.sent_value).ok_or(NettingError::Overflow)?;
        sum += i128::from(line.net_position.minor());
    }
    assert_eq!(sum, 0, "net positions must sum to zero");
    Ok(Netting { totals: lines.into_values().collect(), movements: count, gross_value: gross })
}

impl Netting {
    /// The postings that settle the cycle: net debtors pay, net creditors
    /// receive; participants at exactly zero post nothing. The amounts paid
    /// and received are equal (asserted).
    pub fn instructions(&self) -> Vec<Instruction> {
        let mut paid: i128 = 0;
        let mut received: i128 = 0;
        let instructions: Vec<Instruction> = self
            .totals
            .iter()
            .filter(|t| t.net_position != Amount::ZERO)
            .map(|t| {
                if t.net_position.is_negative() {
                    let amount = t.net_position.checked_neg().expect("a sum of amounts within range negates");
                    paid += i128::from(amount.minor());
                    Instruction::Pay { participant: t.participant, amount }
                } else {
                    received += i128::from(t.net_position.minor());
                    Instruction::Receive { participant: t.participant, amount: t.net_position }
                }
            })
            .collect();
        assert_eq!(paid, received, "settlement instructions must balance");
        instructions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn pid(code: u32) -> ParticipantId {
        ParticipantId::new(code).unwrap()
    }

    fn m(payer: u32, payee: u32, minor: i64) -> Movement {
        Movement { payer: pid(payer), payee: pid(payee), amount: Amount::from_minor(minor) }
    }

    #[test]
    fn a_small_cycle() {
        let netting = net([m(1, 2, 100_00), m(2, 3, 30_00), m(3, 1, 50_00), m(1, 3, 5_00)]).unwrap();
        let line = |code| *netting.totals.iter().find(|t| t.participant == pid(code)).unwrap();
        assert_eq!(line(1).net_position, Amount::from_minor(-55_00));
        assert_eq!(line(2).net_position, Amount::from_minor(70_00));
        assert_eq!(line(3).net_position, Amount::from_minor(-15_00));
        assert_eq!((line(1).sent_count, line(1).sent_value), (2, Amount::from_minor(105_00)));
        assert_eq!(netting.gross_value, Amount::from_minor(185_00));
        assert_eq!(
            netting.instructions(),
            [
                Instruction::Pay { participant: pid(1), amount: Amount::from_minor(55_00) },
                Instruction::Receive { participant: pid(2), amount: Amount::from_minor(70_00) },
                Instruction::Pay { participant: pid(3), amount: Amount::from_minor(15_00) },
            ]
        );
    }

    #[test]
    fn bad_movements_are_refused() {
        assert_eq!(net([m(1, 2, 0)]), Err(NettingError::NonPositive));
        assert_eq!(net([m(1, 1, 5)]), Err(NettingError::SelfPayment));
        assert_eq!(net([m(1, 2, i64::MAX), m(3, 2, 1)]), Err(NettingError::Overflow));
        assert_eq!(net([]).unwrap().totals, []);
    }

    proptest! {
        /// Net positions sum to zero and equal an independent recomputation
        /// from the movement list; instructions balance.
        #[test]
        fn netting_matches_an_independent_recomputation(
            moves in prop::collection::vec((1_u32..30, 1_u32..30, 1_i64..10_000_000), 0..500)
        ) {
            let movements: Vec<Movement> =
                moves.iter().filter(|(a, b, _)| a != b).map(|&(a, b, v)| m(a, b, v)).collect();
            let netting = net(movements.iter().copied()).unwrap();
            let mut expected: HashMap<ParticipantId, i64> = HashMap::new();
            for mv in &movements {
                *expected.entry(mv.payer).or_default() -= mv.amount.minor();
                *expected.entry(mv.payee).or_default() += mv.amount.minor();
            }
            prop_assert_eq!(netting.totals.len(), expected.len());
            for t in &netting.totals {
                prop_assert_eq!(t.net_position.minor(), expected[&t.participant]);
            }
            prop_assert_eq!(netting.totals.iter().map(|t| i128::from(t.net_position.minor())).sum::<i128>(), 0);
            prop_assert_eq!(netting.movements, movements.len() as u64);
            let _ = netting.instructions();
        }
    }
}
