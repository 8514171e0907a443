//! Settlement cycles inside the engine.
//!
//! Every settled payment and return lands in the cycle open at the moment
//! its settlement event is applied, so closing a cycle is a cut in the
//! engine's event order: each movement belongs to exactly one cycle, also
//! under full load. A cycle goes open -> closed (by schedule or the
//! operator) -> settled (when the operator confirms the RTGS posting); then
//! its net positions leave the participants' unsettled positions, and the
//! headroom they used returns.

use super::{Engine, Event, Output, Transfer, TransferState};
use ponte_domain::{Amount, ParticipantId, TimestampMs};
use ponte_settlement::report::{self, CycleHeader, CycleReport, CycleStatus, SettledMovement};
use ponte_settlement::{Movement, NettingError, Positions};
use std::ops::Range;

/// A cycle as the engine keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cycle {
    pub header: CycleHeader,
    /// Net position per participant so far (credits minus debits).
    pub nets: Positions,
    pub movements: u64,
    /// The slab positions its movements lie between. Transfers are
    /// recorded in arrival order and settle within a payee deadline of it,
    /// so a cycle's movements sit together: finding them reads this span,
    /// not the whole history.
    pub span: Range<usize>,
}

impl Cycle {
    pub(super) fn open(id: u64, at: TimestampMs) -> Cycle {
        Cycle {
            header: CycleHeader { id, status: CycleStatus::Open, opened_at: at, closed_at: None, settled_at: None },
            nets: Positions::default(),
            movements: 0,
            span: 0..0,
        }
    }

    /// Adds the movement of the transfer at slab `position`.
    pub(super) fn add(&mut self, position: usize, payer: ParticipantId, payee: ParticipantId, amount: Amount) {
        self.span = if self.span.is_empty() {
            position..position + 1
        } else {
            self.span.start.min(position)..self.span.end.max(position + 1)
        };
        self.nets.add(&Movement { payer, payee, amount }).expect("cycle net overflow");
        self.movements += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    #[error("no cycle {0}")]
    Unknown(u64),
    #[error("cycle {0} is {1}; only a closed cycle can be confirmed as settled")]
    NotClosed(u64, &'static str),
    #[error("the cycle's netting failed: {0}")]
    Netting(NettingError),
    #[error("part of cycle {0} is archived: its report is built from memory and archive together")]
    Archived(u64),
}

pub(crate) fn movement_of(t: &Transfer) -> SettledMovement {
    let movement = Movement { payer: t.payer.participant, payee: t.payee.participant, amount: t.amount };
    SettledMovement { id: t.id, movement, settled_at: t.settled_at.unwrap_or(t.created_at) }
}

impl Engine {
    /// The id of the cycle settlements currently land in.
    pub fn open_cycle(&self) -> u64 {
        self.current_cycle
    }

    pub fn cycles(&self) -> impl Iterator<Item = &Cycle> {
        self.cycles.values()
    }

    /// Closes the open cycle now; the next one opens at the same instant.
    pub(super) fn close_cycle(&mut self, now: TimestampMs, out: &mut Output) -> CycleHeader {
        let id = self.current_cycle;
        self.record(Event::CycleClosed { id, at: now }, out);
        self.cycles[&id].header
    }

    /// Records the central bank's confirmation that a closed cycle is posted.
    pub(super) fn confirm_cycle(
        &mut self,
        now: TimestampMs,
        id: u64,
        out: &mut Output,
    ) -> Result<CycleHeader, CycleError> {
        let cycle = self.cycles.get(&id).ok_or(CycleError::Unknown(id))?;
        if cycle.header.status != CycleStatus::Closed {
            return Err(CycleError::NotClosed(id, cycle.header.status.as_str()));
        }
        self.record(Event::CycleSettled { id, at: now }, out);
        Ok(self.cycles[&id].header)
    }

    /// Closes the open cycle when the schedule says so.
    pub(super) fn close_on_schedule(&mut self, now: TimestampMs, out: &mut Output) {
        let every = self.config.cycle_close_every_ms;
        if every <= 0 {
            return;
        }
        let opened = self.cycles[&self.current_cycle].header.opened_at;
        if now >= opened.saturating_add(every) {
            self.close_cycle(now, out);
        }
    }

    /// The transfers settled in cycle `id`, read from the cycle's span of
    /// the transfer slab (other cycles' and unsettled transfers in it are
    /// skipped).
    pub(super) fn settled_in(&self, id: u64) -> impl Iterator<Item = &Transfer> {
        self.settled_in_from(id, 0).map(|(_, t)| t)
    }

    /// [`Engine::settled_in`] from position `from` on, with each transfer's
    /// position (a page of a cycle's transfers starts where the last ended).
    pub(super) fn settled_in_from(&self, id: u64, from: u64) -> impl Iterator<Item = (u64, &Transfer)> {
        let span = self.cycles.get(&id).map_or(0..0, |c| c.span.clone());
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        let span = span.start.max(self.transfers.head()).max(from)..span.end.max(from);
        span.map(|position| (position as u64, self.transfers.at(position)))
            .filter(move |(_, t)| t.state == TransferState::Settled && u64::from(t.cycle) == id)
    }

    /// Whether some of cycle `id`'s transfers were archived: then what the
    /// archive must hold for the rest of the cycle.
    pub fn cycle_not_held(&self, id: u64) -> Option<crate::NotHeld> {
        let span = self.cycles.get(&id)?.span.clone();
        (!span.is_empty() && span.start < self.transfers.head()).then(|| self.not_held())
    }

    /// The movements that landed in cycle `id`, each with the original
    /// payment when it is a return.
    pub fn cycle_movements(&self, id: u64) -> Vec<(SettledMovement, Option<ponte_domain::EndToEndId>)> {
        self.settled_in(id).map(|t| (movement_of(t), self.originals.get(&t.id).copied())).collect()
    }

    /// What a report of cycle `id` is built from: its header and movements.
    pub fn cycle_report_parts(&self, id: u64) -> Result<(CycleHeader, Vec<SettledMovement>), CycleError> {
        let cycle = self.cycles.get(&id).ok_or(CycleError::Unknown(id))?;
        let mut movements = Vec::with_capacity(usize::try_from(cycle.movements).unwrap_or(0));
        movements.extend(self.settled_in(id).map(movement_of));
        Ok((cycle.header, movements))
    }

    /// The report of cycle `id`, built here (the switch builds it off the
    /// engine thread from [`Engine::cycle_report_parts`]).
    pub fn cycle_report(&self, id: u64) -> Result<CycleReport, CycleError> {
        if self.cycle_not_held(id).is_some() {
            return Err(CycleError::Archived(id));
        }
        let (header, movements) = self.cycle_report_parts(id)?;
        report::build(header, movements).map_err(CycleError::Netting)
    }

    pub(super) fn apply_cycle_closed(&mut self, id: u64, at: TimestampMs) {
        assert_eq!(id, self.current_cycle, "only the open cycle closes");
        let cycle = self.cycles.get_mut(&id).expect("open cycle exists");
        cycle.header.status = CycleStatus::Closed;
        cycle.header.closed_at = Some(at);
        self.current_cycle += 1;
        self.cycles.insert(self.current_cycle, Cycle::open(self.current_cycle, at));
    }

    pub(super) fn apply_cycle_settled(&mut self, id: u64, at: TimestampMs) {
        let cycle = self.cycles.get_mut(&id).expect("settled cycle exists");
        assert_eq!(cycle.header.status, CycleStatus::Closed, "only closed cycles settle");
        cycle.header.status = CycleStatus::Settled;
        cycle.header.settled_at = Some(at);
        let nets: Vec<(ParticipantId, Amount)> = cycle.nets.iter().collect();
        for (participant, net) in nets {
            let p = self.participant_mut(participant);
            p.position = p.position.checked_sub(net).expect("position underflow");
            // A prefunded participant's settled net moves into its balance,
            // so what it can send does not change; a net debit cap's headroom returns.
            if p.liquidity == super::Liquidity::Prefunded {
                p.balance = p.balance.checked_add(net).expect("balance overflow");
            }
        }
    }
}
