//! The ledger's invariants, checked from scratch.

use crate::Engine;
use ponte_domain::{ParticipantId, TransferState};
use std::collections::HashMap;

impl Engine {
    /// Checks the ledger's invariants from scratch; `Err` says which broke.
    /// Run after a replay (the switch refuses to start on a broken ledger)
    /// and throughout the property tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut position_sum: i128 = 0;
        let mut reserved = HashMap::<ParticipantId, i128>::new();
        let mut inflight = HashMap::<ParticipantId, u32>::new();
        let queued = self.deadlines.queued();
        for (position, t) in self.transfers.values() {
            if t.state == TransferState::Reserved {
                *reserved.entry(t.payer.participant).or_default() += i128::from(t.amount.minor());
                *inflight.entry(t.payee.participant).or_default() += 1;
                if !queued.contains(&(t.deadline, position)) {
                    return Err(format!("reserved transfer {} has no deadline", t.id));
                }
            }
            if t.returned > t.amount {
                return Err(format!("transfer {} returned {} of {}", t.id, t.returned, t.amount));
            }
            if self.late_returns.returned(&t.id) != ponte_domain::Amount::ZERO {
                return Err(format!("transfer {} is in memory and has late returns", t.id));
            }
        }
        // Positions are what unsettled cycles (open or closed) net to.
        let mut unsettled = HashMap::<ParticipantId, i128>::new();
        for cycle in self.cycles.values().filter(|c| c.header.status != ponte_settlement::report::CycleStatus::Settled)
        {
            for (participant, net) in cycle.nets.iter() {
                *unsettled.entry(participant).or_default() += i128::from(net.minor());
            }
        }
        for p in self.participants.values() {
            position_sum += i128::from(p.position.minor());
            let expected = reserved.get(&p.id).copied().unwrap_or(0);
            if i128::from(p.reserved.minor()) != expected {
                return Err(format!(
                    "participant {} reserved {} but its transfers hold {}",
                    p.id, p.reserved, expected
                ));
            }
            if p.inflight_in != inflight.get(&p.id).copied().unwrap_or(0) {
                return Err(format!("participant {} in-flight count is off", p.id));
            }
            let expected = unsettled.get(&p.id).copied().unwrap_or(0);
            if i128::from(p.position.minor()) != expected {
                return Err(format!(
                    "participant {} position {} but its unsettled cycles net to {expected}",
                    p.id, p.position
                ));
            }
        }
        if position_sum != 0 {
            return Err(format!("positions sum to {position_sum} minor units, not zero"));
        }
        self.check_envelopes()
    }
}
