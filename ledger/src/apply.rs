//! Applying events: the only code that changes durable state, used live
//! and on replay, so a rebuilt engine is the engine that was running.

use crate::participants::ParticipantState;
use crate::payments::Transfer;
use crate::{Cycle, Engine, Event, Output};
use ponte_domain::{
    Amount, EndToEndId, Liquidity, ParticipantId, ParticipantStatus, ReasonCode, TimestampMs, TransferEvent,
    TransferState,
};

impl Engine {
    /// Applies an event, then appends it to the journal output.
    pub(crate) fn record(&mut self, event: Event<'_>, out: &mut Output) {
        self.apply(&event);
        event.encode_into(&mut out.journal);
        out.event_count += 1;
    }

    /// The only function that changes durable state. Used live and on replay.
    ///
    /// # Panics
    /// On an event that contradicts the state (a journal from another
    /// switch, or a bug): replaying it could only make the ledger wrong.
    pub fn apply(&mut self, event: &Event<'_>) {
        match *event {
            Event::EnvelopeOpened { number, ref header, digest, at } => {
                self.apply_envelope_opened(number, header, digest, at)
            }
            Event::EnvelopeItemsAdded { number, ref items, ref flagged } => {
                self.apply_envelope_items(number, items, flagged)
            }
            Event::EnvelopeSealed { number, at } => self.apply_envelope_sealed(number, at),
            Event::EnvelopeDiscarded { number } => self.apply_envelope_discarded(number),
            Event::EnvelopeItemStarted { number, index, id, counter } => {
                self.apply_envelope_item_started(number, index, id, counter)
            }
            Event::KeyRegistered { ref entry } => self.directory.registry.insert(entry.clone()),
            Event::KeyDeleted { ref key } => {
                self.directory.registry.remove(key).expect("deleted key exists");
            }
            Event::KeyMoved { ref key, account } => self.directory.registry.set_account(key, account),
            Event::ClaimStored { ref claim } => {
                if !claim.status.is_final() {
                    self.claim_deadline = self.claim_deadline.min(claim.resolve_by);
                }
                self.directory.claims.store(claim.clone());
            }
            Event::ClaimCompleted { ref claim, ref entry } => {
                let d = &mut self.directory;
                d.registry.remove(&claim.key).expect("claimed key exists");
                d.registry.insert(entry.clone());
                d.claims.store(claim.clone());
            }
            Event::LookupCategorySet { id, category } => self.directory.lookups.set_category(id, category),
            Event::LiquiditySet { id, liquidity } => self.participant_mut(id).liquidity = liquidity,
            Event::FundsMoved { id, amount } => {
                let p = self.participant_mut(id);
                p.balance = p.balance.checked_add(amount).expect("balance overflow");
            }
            Event::CycleOpened { id, at } => {
                self.cycles.entry(id).or_insert_with(|| Cycle::open(id, at)).header.opened_at = at;
            }
            Event::CycleClosed { id, at } => self.apply_cycle_closed(id, at),
            Event::CycleSettled { id, at } => self.apply_cycle_settled(id, at),
            Event::ParticipantRegistered { id, name, net_debit_cap } => self.apply_registered(id, name, net_debit_cap),
            Event::LimitSet { id, net_debit_cap } => self.participant_mut(id).net_debit_cap = net_debit_cap,
            Event::StatusSet { id, status } => self.participant_mut(id).status = status,
            Event::Reserved { id, payer, payee, amount, digest, at, deadline, remittance: _ } => {
                let reserved = TransferState::Received.next(TransferEvent::Reserve).expect("legal");
                let transfer = Transfer::new(id, payer, payee, amount, digest, at, reserved);
                self.apply_reserved(Transfer { deadline, ..transfer });
            }
            Event::Settled { id, at } => self.apply_settled(id, at),
            Event::Rejected { id, reason, at: _ } => self.apply_rejected(id, reason),
            Event::Refused { id, payer, payee, amount, digest, reason, at, original } => {
                let refused = TransferState::Received.next(TransferEvent::Reject).expect("legal");
                let transfer = Transfer::new(id, payer, payee, amount, digest, at, refused);
                self.apply_refused(Transfer { reason: Some(reason), ..transfer }, original);
            }
            Event::ReturnSettled { id, original, payer, payee, amount, digest, reason: _, at } => {
                let settled = TransferState::Received.next(TransferEvent::Settle).expect("legal");
                let transfer = Transfer::new(id, payer, payee, amount, digest, at, settled);
                self.apply_return_settled(Transfer { settled_at: Some(at), ..transfer }, original, None);
            }
            Event::Evicted { through, at } => self.apply_evicted(through, at),
            Event::LateReturnSettled { .. } => self.apply_late_return_settled(event),
            Event::Forgotten { through } => self.apply_forgotten(through),
            Event::EnvelopeItemsArchived { number, through } => self.apply_envelope_items_archived(number, through),
            Event::EnvelopeForgotten { number, through } => self.apply_envelope_forgotten(number, through),
            Event::ClaimsForgotten { before } => {
                self.directory.claims.forget_closed_before(before);
            }
            Event::RecallOpened { ref recall } => self.apply_recall_opened(recall),
            Event::RecallClosed { original, state, at } => self.apply_recall_closed(original, state, at),
            Event::RecallsForgotten { before } => self.apply_recalls_forgotten(before),
        }
    }

    fn apply_registered(&mut self, id: ParticipantId, name: &str, net_debit_cap: Amount) {
        let participant = ParticipantState {
            id,
            name: name.to_owned(),
            status: ParticipantStatus::Active,
            net_debit_cap,
            position: Amount::ZERO,
            reserved: Amount::ZERO,
            inflight_in: 0,
            liquidity: Liquidity::NetDebitCap,
            balance: Amount::ZERO,
        };
        let previous = self.participants.insert(id, participant);
        assert!(previous.is_none(), "participant {id} registered twice");
    }

    /// A payment holds its payer's liquidity and waits for its payee.
    fn apply_reserved(&mut self, transfer: Transfer) {
        let (id, payer, payee, amount, deadline) =
            (transfer.id, transfer.payer.participant, transfer.payee.participant, transfer.amount, transfer.deadline);
        let position = self.transfers.insert(transfer).unwrap_or_else(|| panic!("transfer {id} reserved twice"));
        let payer_state = self.participant_mut(payer);
        payer_state.reserved = payer_state.reserved.checked_add(amount).expect("reserved overflow");
        self.participant_mut(payee).inflight_in += 1;
        self.deadlines.push(deadline, position);
    }

    fn apply_late_return_settled(&mut self, event: &Event<'_>) {
        let Event::LateReturnSettled {
            id, original, payer, payee, amount, digest, at, closes_at, original_cycle, ..
        } = *event
        else {
            unreachable!("called for late returns only")
        };
        let settled = TransferState::Received.next(TransferEvent::Settle).expect("legal");
        let transfer = Transfer::new(id, payer, payee, amount, digest, at, settled);
        let late = Some((original_cycle, closes_at));
        self.apply_return_settled(Transfer { settled_at: Some(at), ..transfer }, original, late);
    }

    /// The payee accepted: positions move, in the open cycle.
    fn apply_settled(&mut self, id: EndToEndId, at: TimestampMs) {
        let position = self.transfers.find(&id).expect("settled transfer exists");
        let (payer, payee, amount) = {
            let t = self.transfers.at_mut(position);
            t.state = t.state.next(TransferEvent::Settle).expect("only reserved transfers settle");
            t.settled_at = Some(at);
            t.cycle = u32::try_from(self.current_cycle).expect("fewer than 4 billion cycles");
            (t.payer.participant, t.payee.participant, t.amount)
        };
        self.cycle_mut().add(position, payer, payee, amount);
        let p = self.participant_mut(payer);
        p.reserved = p.reserved.checked_sub(amount).expect("reserved underflow");
        p.position = p.position.checked_sub(amount).expect("position underflow");
        let q = self.participant_mut(payee);
        q.inflight_in -= 1;
        q.position = q.position.checked_add(amount).expect("position overflow");
        self.envelope_item_final(&id);
    }

    /// The payee refused or did not answer: the reservation is released.
    fn apply_rejected(&mut self, id: EndToEndId, reason: ReasonCode) {
        let (payer, payee, amount) = {
            let t = self.transfers.get_mut(&id).expect("rejected transfer exists");
            t.state = t.state.next(TransferEvent::Reject).expect("only reserved transfers are rejected");
            t.reason = Some(reason);
            (t.payer.participant, t.payee.participant, t.amount)
        };
        let p = self.participant_mut(payer);
        p.reserved = p.reserved.checked_sub(amount).expect("reserved underflow");
        self.participant_mut(payee).inflight_in -= 1;
        self.envelope_item_final(&id);
    }

    /// A payment or return refused by the switch: recorded so its id keeps
    /// its outcome, nothing moves.
    fn apply_refused(&mut self, transfer: Transfer, original: Option<EndToEndId>) {
        let id = transfer.id;
        assert!(self.transfers.insert(transfer).is_some(), "transfer {id} recorded twice");
        if let Some(original) = original {
            self.originals.insert(id, original);
        }
        self.envelope_item_final(&id);
    }

    /// A return settles at once, in the open cycle, against its original
    /// (in memory, or archived: `late` = its cycle and when its return
    /// window closes).
    fn apply_return_settled(&mut self, transfer: Transfer, original: EndToEndId, late: Option<(u32, TimestampMs)>) {
        let (id, payer, payee, amount) =
            (transfer.id, transfer.payer.participant, transfer.payee.participant, transfer.amount);
        let transfer =
            Transfer { cycle: u32::try_from(self.current_cycle).expect("fewer than 4 billion cycles"), ..transfer };
        let position = self.transfers.insert(transfer).unwrap_or_else(|| panic!("return {id} recorded twice"));
        self.cycle_mut().add(position, payer, payee, amount);
        self.originals.insert(id, original);
        let at = self.transfers.at(position).created_at;
        self.accept_recall(original, id, amount, at);
        match late {
            None => {
                let o = self.transfers.get_mut(&original).expect("original of a return exists");
                o.returned = o.returned.checked_add(amount).expect("returned overflow");
                assert!(o.returned <= o.amount, "return exceeds original {original}");
            }
            Some((original_cycle, closes_at)) => {
                assert!(self.transfers.get(&original).is_none(), "original {original} of a late return is in memory");
                self.apply_late_return(id, original, original_cycle, amount, closes_at);
            }
        }
        let p = self.participant_mut(payer);
        p.position = p.position.checked_sub(amount).expect("position underflow");
        let q = self.participant_mut(payee);
        q.position = q.position.checked_add(amount).expect("position overflow");
    }

    pub(crate) fn cycle_mut(&mut self) -> &mut Cycle {
        let id = self.current_cycle;
        self.cycles.entry(id).or_insert_with(|| Cycle::open(id, 0))
    }
}
