//! Participants as the engine keeps them: admission, limits, status,
//! prefunded balances, and what the operator sees.

use crate::{Engine, Event, Output, PARTICIPANT_NAME_LEN_MAX};
use ponte_domain::{Account, Amount, Liquidity, ParticipantId, ParticipantStatus};

/// A participant as the engine keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ParticipantState {
    pub id: ParticipantId,
    pub name: String,
    pub status: ParticipantStatus,
    /// How far below zero `position - reserved` may go.
    pub net_debit_cap: Amount,
    /// Settled credits minus settled debits.
    pub position: Amount,
    /// Liquidity held by this participant's payments awaiting their payee.
    pub reserved: Amount,
    /// Payments to this participant awaiting its answer.
    pub inflight_in: u32,
    /// How the participant's limit works.
    pub liquidity: Liquidity,
    /// Prefunded money held at the switch's settlement account (prefunded
    /// participants): funds in minus funds out plus settled cycles' nets.
    pub balance: Amount,
}

impl ParticipantState {
    /// What it can still send: `net_debit_cap + position - reserved` (net
    /// debit cap) or `balance + position - reserved` (prefunded).
    pub fn available(&self) -> Amount {
        ponte_settlement::liquidity::Exposure {
            liquidity: self.liquidity,
            net_debit_cap: self.net_debit_cap,
            balance: self.balance,
            position: self.position,
            reserved: self.reserved,
        }
        .available()
    }
}

#[derive(Debug, Clone)]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub name: String,
    pub status: ParticipantStatus,
    pub liquidity: Liquidity,
    pub balance: Amount,
    pub net_debit_cap: Amount,
    pub position: Amount,
    pub reserved: Amount,
    pub available: Amount,
    pub online: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("participant {0} is not registered")]
    UnknownParticipant(ParticipantId),
    #[error("participant {0} is already registered with other details")]
    AlreadyRegistered(ParticipantId),
    #[error("participant name must be 1 to {PARTICIPANT_NAME_LEN_MAX} characters")]
    InvalidName,
    #[error("participant code 00000000 is reserved (it marks unresolved payees)")]
    ReservedCode,
    #[error("lookup category must be a letter from A to H")]
    InvalidCategory,
    #[error("funds move only for prefunded participants")]
    NotPrefunded,
    #[error("only {available} can be withdrawn now (the rest is reserved or owed)")]
    InsufficientFunds { available: Amount },
    #[error("the amount must be greater than zero")]
    NonPositiveAmount,
}

impl Engine {
    pub(crate) fn register(
        &mut self,
        id: ParticipantId,
        name: String,
        net_debit_cap: Amount,
        out: &mut Output,
    ) -> Result<ParticipantView, AdminError> {
        if name.trim().is_empty() || name.chars().count() > PARTICIPANT_NAME_LEN_MAX {
            return Err(AdminError::InvalidName);
        }
        if id == Account::unresolved().participant {
            return Err(AdminError::ReservedCode);
        }
        if let Some(existing) = self.participants.get(&id) {
            if existing.name == name && existing.net_debit_cap == net_debit_cap {
                return Ok(self.view(id).expect("exists"));
            }
            return Err(AdminError::AlreadyRegistered(id));
        }
        self.record(Event::ParticipantRegistered { id, name: &name, net_debit_cap }, out);
        Ok(self.view(id).expect("just registered"))
    }

    pub(crate) fn move_funds(
        &mut self,
        id: ParticipantId,
        amount: Amount,
        into: bool,
        out: &mut Output,
    ) -> Result<ParticipantView, AdminError> {
        let p = self.participants.get(&id).ok_or(AdminError::UnknownParticipant(id))?;
        if p.liquidity != Liquidity::Prefunded {
            return Err(AdminError::NotPrefunded);
        }
        if amount <= Amount::ZERO {
            return Err(AdminError::NonPositiveAmount);
        }
        if !into && p.available() < amount {
            return Err(AdminError::InsufficientFunds { available: p.available() });
        }
        let delta = if into { amount } else { amount.checked_neg().expect("positive amounts negate") };
        self.change_participant(id, Event::FundsMoved { id, amount: delta }, out)
    }

    /// Records a change to an existing participant (limit, status).
    pub(crate) fn change_participant(
        &mut self,
        id: ParticipantId,
        event: Event<'_>,
        out: &mut Output,
    ) -> Result<ParticipantView, AdminError> {
        if !self.participants.contains_key(&id) {
            return Err(AdminError::UnknownParticipant(id));
        }
        self.record(event, out);
        Ok(self.view(id).expect("exists"))
    }

    pub(crate) fn view(&self, id: ParticipantId) -> Option<ParticipantView> {
        let p = self.participants.get(&id)?;
        Some(ParticipantView {
            id: p.id,
            name: p.name.clone(),
            status: p.status,
            liquidity: p.liquidity,
            balance: p.balance,
            net_debit_cap: p.net_debit_cap,
            position: p.position,
            reserved: p.reserved,
            available: p.available(),
            online: self.online.contains_key(&id),
        })
    }

    pub(crate) fn participant_mut(&mut self, id: ParticipantId) -> &mut ParticipantState {
        self.participants.get_mut(&id).unwrap_or_else(|| panic!("event names unknown participant {id}"))
    }
}
