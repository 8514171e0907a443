//! Envelope events applied to the engine's state (live and on replay), and
//! the envelopes' invariants.

use super::{
    ArchivedItems, Beneficiary, Disbursements, ENVELOPE_ITEMS_MAX, Envelope, EnvelopeHeader, EnvelopeItem, Slot, id_key,
};
use crate::Engine;
use crate::archive::{ArchiveOp, number_op};
use ponte_domain::{Amount, EndToEndId, ReasonCode, TimestampMs, TransferState};
use std::collections::HashMap;

impl Engine {
    pub(crate) fn apply_envelope_opened(
        &mut self,
        number: u64,
        header: &EnvelopeHeader,
        digest: u128,
        at: TimestampMs,
    ) {
        let d = &mut self.disbursements;
        // Opening again an upload cut short starts it over.
        forget_items(d, number);
        d.next_number = d.next_number.max(number + 1);
        d.by_reference.insert((header.agency, header.reference.clone()), number);
        // Sized for the whole envelope now: growing a map or vector of a
        // million entries doubles (rehash, copy) inside one command, which
        // stalled retail payments by up to half a second (BENCHMARKS.md).
        let count = header.control_count.min(ENVELOPE_ITEMS_MAX) as usize;
        d.ledger.entry(header.agency).or_default().reserve(count);
        let envelope = Envelope {
            header: header.clone(),
            digest,
            opened_at: at,
            sealed_at: None,
            slots: Vec::with_capacity(count),
            total: Amount::ZERO,
            beneficiaries: HashMap::with_capacity(count),
            next: 0,
            paid_count: 0,
            paid_value: Amount::ZERO,
            failed_count: 0,
            failed_value: Amount::ZERO,
            in_progress: 0,
            completed_at: None,
            archived_through: 0,
            kept_ids: Vec::new(),
            released: 0,
        };
        d.envelopes.insert(number, envelope);
    }

    /// Items of an open envelope, in order; `flagged` (envelope indexes)
    /// are DUPL and never paid.
    pub(crate) fn apply_envelope_items(&mut self, number: u64, items: &[EnvelopeItem], flagged: &[u32]) {
        let d = &mut self.disbursements;
        let envelope = d.envelopes.get_mut(&number).expect("items for an open envelope");
        let ledger = d.ledger.entry(envelope.header.agency).or_default();
        let mut flagged = flagged.iter().copied().peekable();
        for item in items {
            let index = envelope.slots.len() as u32;
            let is_flagged = flagged.next_if_eq(&index).is_some();
            envelope.total = envelope.total.checked_add(item.amount).unwrap_or(Amount::MAX);
            if is_flagged {
                envelope.failed_count += 1;
                envelope.failed_value = envelope.failed_value.checked_add(item.amount).expect("value overflow");
            } else {
                ledger.insert(id_key(&item.disbursement_id), (number, index));
                envelope.beneficiaries.entry(beneficiary_hash(&item.beneficiary)).or_default().push(index);
            }
            let flagged = is_flagged.then_some(ReasonCode::DuplicatePayment);
            envelope.slots.push(Slot { item: item.clone(), transfer: None, flagged, end: None });
        }
    }

    pub(crate) fn apply_envelope_sealed(&mut self, number: u64, at: TimestampMs) {
        let d = &mut self.disbursements;
        let envelope = d.envelopes.get_mut(&number).expect("sealing an open envelope");
        envelope.sealed_at = Some(at);
        envelope.beneficiaries = HashMap::new();
        if envelope.failed_count == envelope.header.control_count {
            envelope.completed_at = Some(at); // every item flagged: nothing to pay
            d.evict_at = 0;
        }
        d.active.push_back(number);
    }

    /// Items `archived_through..through` of a complete envelope go to the
    /// archive (an archive op with their outcomes); a failed item frees
    /// its disbursement id, a paid one keeps it until the envelope is
    /// forgotten. The slots are freed once the last item has gone.
    pub(crate) fn apply_envelope_items_archived(&mut self, number: u64, through: u32) {
        let envelope = &self.disbursements.envelopes[&number];
        let (first, agency) = (envelope.archived_through, envelope.header.agency);
        let completed_at = envelope.completed_at.expect("only complete envelopes are archived");
        assert!(first < through && through as usize <= envelope.slots.len(), "archiving items past the envelope");
        let views: Vec<_> = (first..through).map(|i| self.item_view(i, &envelope.slots[i as usize])).collect();
        let d = &mut self.disbursements;
        let envelope = d.envelopes.get_mut(&number).expect("known above");
        let ledger = d.ledger.entry(agency).or_default();
        for view in &views {
            let key = id_key(&view.item.disbursement_id);
            let holds = ledger.get(&key) == Some(&(number, view.index));
            match view.outcome {
                super::ItemOutcome::Paid { .. } if holds => envelope.kept_ids.push(key),
                _ if holds => {
                    ledger.remove(&key);
                }
                _ => {}
            }
        }
        envelope.archived_through = through;
        d.archived_items += u64::from(through - first);
        if through as usize == envelope.slots.len() {
            envelope.slots = Vec::new();
        }
        number_op(&mut self.archive_out, &mut self.archive_ops, || {
            ArchiveOp::EnvelopeItems(Box::new(ArchivedItems { number, agency, first, completed_at, items: views }))
        });
    }

    /// An archived envelope past the retention releases the disbursement
    /// ids `released..through` of its paid items; once all are released it
    /// is forgotten (its reference may then be used again).
    pub(crate) fn apply_envelope_forgotten(&mut self, number: u64, through: u32) {
        let d = &mut self.disbursements;
        let envelope = d.envelopes.get_mut(&number).expect("forgetting a known envelope");
        let agency = envelope.header.agency;
        if let Some(ledger) = d.ledger.get_mut(&agency) {
            for key in &envelope.kept_ids[envelope.released as usize..through as usize] {
                if ledger.get(key).is_some_and(|&(n, _)| n == number) {
                    ledger.remove(key);
                }
            }
            if ledger.is_empty() {
                d.ledger.remove(&agency);
            }
        }
        envelope.released = through;
        if through as usize == envelope.kept_ids.len() {
            let envelope = d.envelopes.remove(&number).expect("known above");
            d.archived_items -= u64::from(envelope.archived_through);
            d.by_reference.remove(&(agency, envelope.header.reference));
        }
    }

    pub(crate) fn apply_envelope_discarded(&mut self, number: u64) {
        let d = &mut self.disbursements;
        forget_items(d, number);
        if let Some(envelope) = d.envelopes.remove(&number) {
            d.by_reference.remove(&(envelope.header.agency, envelope.header.reference));
        }
    }

    pub(crate) fn apply_envelope_item_started(&mut self, number: u64, index: u32, id: EndToEndId, counter: u64) {
        let d = &mut self.disbursements;
        let envelope = d.envelopes.get_mut(&number).expect("item of a known envelope");
        let slot = &mut envelope.slots[index as usize];
        assert!(slot.transfer.is_none(), "item {index} of envelope {number} started twice");
        slot.transfer = Some(id);
        envelope.in_progress += 1;
        d.in_flight.insert(id, (number, index));
        d.id_counter = counter + 1;
    }

    /// Invariants of the envelopes: progress counters match the items.
    pub(crate) fn check_envelopes(&self) -> Result<(), String> {
        for (number, e) in &self.disbursements.envelopes {
            if e.archived_through > 0 {
                // Its items are (partly) in the archive: what memory says must add up.
                if e.completed_at.is_none() || e.paid_count + e.failed_count != e.header.control_count {
                    return Err(format!("envelope {number}: archived but not complete"));
                }
                continue;
            }
            let (mut paid, mut failed, mut busy) = (0_u32, 0_u32, 0_u32);
            for slot in &e.slots {
                match (slot.flagged, self.progress(slot).map(|p| p.state)) {
                    (Some(_), _) => failed += 1,
                    (None, Some(TransferState::Settled)) => paid += 1,
                    (None, Some(TransferState::Rejected)) => failed += 1,
                    (None, Some(_)) => busy += 1,
                    (None, None) => {}
                }
            }
            if (paid, failed, busy) != (e.paid_count, e.failed_count, e.in_progress) {
                return Err(format!(
                    "envelope {number}: counters {:?} but items say {:?}",
                    (e.paid_count, e.failed_count, e.in_progress),
                    (paid, failed, busy)
                ));
            }
        }
        Ok(())
    }
}

/// Frees the disbursement ids an unsealed envelope took (it is discarded
/// or its upload starts over). Only unsealed envelopes: nothing of theirs
/// was paid.
pub(super) fn forget_items(d: &mut Disbursements, number: u64) {
    let Some(envelope) = d.envelopes.get(&number) else { return };
    debug_assert!(envelope.sealed_at.is_none());
    if let Some(ledger) = d.ledger.get_mut(&envelope.header.agency) {
        for slot in &envelope.slots {
            let key = id_key(&slot.item.disbursement_id);
            if ledger.get(&key).is_some_and(|&(n, _)| n == number) {
                ledger.remove(&key);
            }
        }
    }
}

/// A hash of a beneficiary, to find repeats without keeping a second copy.
pub(super) fn beneficiary_hash(beneficiary: &Beneficiary) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5eed).hash_one(beneficiary)
}
