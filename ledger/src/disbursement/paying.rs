//! Paying sealed envelopes: items started at the runtime's pace, each an
//! ordinary payment, and their outcomes counted when final.

use super::{Beneficiary, Disbursements};
use crate::{Engine, Event, Output, PaymentOrder};
use ponte_domain::{Account, EndToEndId, IdKind, ParticipantId, TimestampMs, TransferState};

impl Engine {
    /// Starts up to `budget` items of sealed envelopes, oldest envelope
    /// first, keeping at most `in_flight_max` items waiting for payees.
    /// An item whose payee participant is offline waits (up to
    /// `disbursement_offline_wait_ms`) instead of failing at once. Returns
    /// how many items were started.
    pub fn drive_disbursements(
        &mut self,
        now: TimestampMs,
        budget: usize,
        in_flight_max: usize,
        out: &mut Output,
    ) -> usize {
        /// Deferred items looked at per call, so a long queue of items for
        /// an offline payee costs a bounded time per batch.
        const DEFERRED_LOOKS_MAX: usize = 256;
        let wait = self.config.disbursement_offline_wait_ms;
        let mut started = 0;
        let room = |d: &Disbursements, started: usize| started < budget && d.in_flight.len() < in_flight_max;
        for _ in 0..self.disbursements.deferred.len().min(DEFERRED_LOOKS_MAX) {
            if !room(&self.disbursements, started) {
                return started;
            }
            let Some((number, index, since)) = self.disbursements.deferred.pop_front() else { break };
            if self.payee_online(number, index) || now >= since.saturating_add(wait) {
                self.start_item(now, number, index, out);
                started += 1;
            } else {
                self.disbursements.deferred.push_back((number, index, since));
            }
        }
        while room(&self.disbursements, started) {
            let Some(&number) = self.disbursements.active.front() else { break };
            let envelope = self.disbursements.envelopes.get_mut(&number).expect("active envelopes exist");
            let Some(index) = (envelope.next..envelope.slots.len())
                .find(|&i| envelope.slots[i].transfer.is_none() && envelope.slots[i].flagged.is_none())
            else {
                envelope.next = envelope.slots.len();
                self.disbursements.active.pop_front();
                continue;
            };
            envelope.next = index + 1;
            let index = index as u32;
            if self.payee_online(number, index) {
                self.start_item(now, number, index, out);
                started += 1;
            } else {
                self.disbursements.deferred.push_back((number, index, now));
            }
        }
        started
    }

    /// Whether an item's payee participant has an inbox open (an unknown
    /// key or participant counts as online: its payment fails BE23 or RC07
    /// at once instead of waiting for a participant that will never come).
    pub(crate) fn payee_online(&self, number: u64, index: u32) -> bool {
        let slot = &self.disbursements.envelopes[&number].slots[index as usize];
        let participant = match &slot.item.beneficiary {
            Beneficiary::Account(account) => Some(account.participant),
            Beneficiary::Key(key) => self.directory.registry.get(key).map(|e| e.account.participant),
        };
        participant.is_none_or(|p| self.online.contains_key(&p) || !self.participants.contains_key(&p))
    }

    pub(crate) fn start_item(&mut self, now: TimestampMs, number: u64, index: u32, out: &mut Output) {
        let slot = &self.disbursements.envelopes[&number].slots[index as usize];
        debug_assert!(slot.transfer.is_none() && slot.flagged.is_none());
        let header = &self.disbursements.envelopes[&number].header;
        let mut counter = self.disbursements.id_counter;
        let id = loop {
            let id = item_payment_id(header.agency, now, counter);
            if !self.transfers.contains(&id) {
                break id;
            }
            counter += 1; // a client minted this id: take the next
        };
        let (payee, payee_key) = match &slot.item.beneficiary {
            Beneficiary::Account(account) => (*account, None),
            Beneficiary::Key(key) => (Account::unresolved(), Some(key.clone())),
        };
        let order = PaymentOrder {
            id,
            payer: header.paying_account,
            payee,
            payee_key,
            lookup_by: None,
            amount: slot.item.amount,
            remittance: slot.item.narrative.clone(),
        };
        self.record(Event::EnvelopeItemStarted { number, index, id, counter }, out);
        self.submit(now, order, out);
    }

    /// Called by `apply` when a transfer becomes final: updates its
    /// envelope's progress if it pays an item.
    pub(crate) fn envelope_item_final(&mut self, id: &EndToEndId) {
        if self.disbursements.in_flight.is_empty() {
            return; // no envelope is paying: skip hashing the id
        }
        let Some((number, index)) = self.disbursements.in_flight.remove(id) else { return };
        let transfer = self.transfers.get(id).expect("final transfer exists");
        let (settled, amount) = (transfer.state == TransferState::Settled, transfer.amount);
        let progress = super::Progress::of(transfer);
        let envelope = self.disbursements.envelopes.get_mut(&number).expect("envelope of an item");
        debug_assert_eq!(envelope.slots[index as usize].transfer, Some(*id));
        envelope.slots[index as usize].end = Some(progress);
        envelope.in_progress -= 1;
        if settled {
            envelope.paid_count += 1;
            envelope.paid_value = envelope.paid_value.checked_add(amount).expect("value overflow");
        } else {
            envelope.failed_count += 1;
            envelope.failed_value = envelope.failed_value.checked_add(amount).expect("value overflow");
        }
        if envelope.sealed_at.is_some() && envelope.paid_count + envelope.failed_count == envelope.header.control_count
        {
            envelope.completed_at = progress.settled_at;
            self.disbursements.evict_at = 0; // its items are due to leave memory in time
        }
    }
}

/// The end-to-end id of an item's payment: the agency's code, the minute,
/// and "DSB" plus the counter in base 36 (8 characters).
pub(super) fn item_payment_id(agency: ParticipantId, now: TimestampMs, counter: u64) -> EndToEndId {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut suffix = *b"DSB00000000";
    let mut n = counter;
    for b in suffix[3..].iter_mut().rev() {
        *b = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    EndToEndId::from_parts(IdKind::Payment, agency, now, &suffix)
}
