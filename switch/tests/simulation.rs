//! Deterministic simulation of the real engine against a reference model.
//!
//! A seeded random workload drives the real state machine (no I/O, a
//! simulated clock): new payments (some to unknown or offline payees, some
//! too large), the same id resubmitted with the same or modified content,
//! payees that accept, reject, answer twice, answer late, answer for
//! someone else's payment or never answer (then the deadline passes),
//! returns (some exceeding what is left), limit changes, inboxes closing and
//! opening, directory keys registered and deleted (some refused: taken, too
//! many on the account, not the holder) and paid (some unregistered: BE23),
//! directory claims (ownership and portability claims opened, acknowledged,
//! confirmed, cancelled and completed by the right and the wrong party,
//! resolution windows lapsing), settlement cycles closed and confirmed,
//! bulk disbursement envelopes
//! (items to offline, unknown and busy payees, disbursement ids reused
//! across envelopes — paid, in progress or failed — and repeated within
//! one), and restarts: the
//! engine rebuilt from its journal at random points, compared field by
//! field with the one it replaces, and byte for byte through its snapshot;
//! snapshots are taken at random points, and a restart may start from the
//! last one plus the journal after it instead of the whole journal; and
//! archival: with a one-minute duplicate window, transfers leave the
//! engine's memory for an archive (kept here as the driver keeps it), and
//! status queries and returns of archived payments are answered from it
//! as the model predicts (returns capped across memory and archive).
//!
//! An independent reference model — plain maps, written from the rules in
//! docs/PAYMENTS.md, sharing no code with the engine — predicts every
//! immediate answer and every final outcome, and the engine must match it
//! exactly. After every step the engine's own invariants are checked, and
//! the model's: positions sum to zero, no payer's exposure passes its limit
//! at reservation, no id settles twice or changes its final outcome, returns
//! never exceed their original.
//!
//! A failure names its seed and step. CI runs `SEEDS_CI` seeds;
//! `PONTE_SIM_SEEDS=2000 cargo test --release -p ponte-switch --test simulation -- --nocapture`
//! runs more (`PONTE_SIM_SEED=N` replays one).

use ponte_directory::claims::{ClaimAction, ClaimError, ClaimKind, ClaimStatus};
use ponte_directory::keys::{Brazil, Key, KeyType, parse};
use ponte_directory::registry::{DirectoryError, NewKey, Owner, OwnerKind};
use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId, ReasonCode, TimestampMs};
use ponte_ledger::op::{self, Operation};
use ponte_ledger::{
    ArchiveOp, ArchivedTransfer, Beneficiary, Decision, Engine, EngineConfig, EnvelopeError, EnvelopeHeader,
    EnvelopeItem, Event, ItemOutcome, ItemView, NumberedOp, Outcome, Output, PaymentOrder, ReturnOrder, Submitted,
    decode_events,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};

const SEEDS_CI: u64 = 24;
const STEPS: usize = 1_500;
const T0: TimestampMs = 1_795_730_100_000;
const PARTICIPANTS: [u32; 4] = [10000001, 10000002, 10000003, 10000004];
/// A code never registered: payments to it are refused RC07.
const STRANGER: u32 = 10000009;
const TIMEOUT_MS: i64 = 1_000;
/// A donor's resolution window for directory claims, short so windows lapse within a run.
const CLAIM_WINDOW_MS: i64 = 4_000;

fn pid(code: u32) -> ParticipantId {
    ParticipantId::new(code).unwrap()
}

fn account(code: u32, number: u32) -> Account {
    Account::new(pid(code), "1", &number.to_string(), AccountType::Checking).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending { deadline: TimestampMs },
    Final(Outcome),
}

#[derive(Debug, Clone)]
struct ModelTransfer {
    payer: u32,
    payee: u32,
    amount: i64,
    remittance: String,
    state: State,
    returned: i64,
    /// Returns only: which payment it gives back, and its reason.
    original: Option<(EndToEndId, ReasonCode)>,
    /// Payments to a key: the key named (the payee is its holder, or 0 when
    /// nobody held it).
    key: Option<Key>,
}

/// The reference model: what the rules say, in the simplest data.
#[derive(Debug, Default)]
struct Model {
    cap: HashMap<u32, i64>,
    reserved: HashMap<u32, i64>,
    online: HashMap<u32, u32>,
    transfers: HashMap<EndToEndId, ModelTransfer>,
    /// Settled nets per cycle not yet confirmed.
    open_nets: BTreeMap<u64, HashMap<u32, i64>>,
    current_cycle: u64,
    closed: Vec<u64>,
    settled_ids: u64,
    /// Directory: phone number index -> the account holding it.
    keys: HashMap<u32, Account>,
    /// Bulk disbursement envelopes accepted (sealed), in order.
    envelopes: Vec<ModelEnvelope>,
    /// Envelopes opened, sealed or refused: each took the next number
    /// (numbers are never reused).
    envelopes_opened: u64,
    /// The engine's envelope number of each sealed envelope: its index in `envelopes`.
    envelope_of: HashMap<u64, usize>,
    /// (agency, disbursement id) -> the latest item carrying it that was
    /// not flagged at sealing: (envelope, item) indexes.
    ledger: HashMap<(u32, String), (usize, usize)>,
    /// Item payments: engine-made id -> (envelope, item).
    item_payments: HashMap<EndToEndId, (usize, usize)>,
    /// Directory claims by id.
    claims: BTreeMap<u64, ModelClaim>,
}

#[derive(Debug, Clone)]
struct ModelClaim {
    kind: ClaimKind,
    phone: u32,
    claimer: u32,
    donor: u32,
    account: Account,
    status: ClaimStatus,
    resolve_by: TimestampMs,
}

impl Model {
    /// The claim in progress (not completed or cancelled) on a phone key.
    fn claim_in_progress(&self, phone: u32) -> bool {
        self.claims
            .values()
            .any(|c| c.phone == phone && !matches!(c.status, ClaimStatus::Completed | ClaimStatus::Cancelled))
    }

    /// Keys held on one account (at most 5 for a person).
    fn keys_on(&self, account: Account) -> usize {
        self.keys.values().filter(|a| **a == account).count()
    }
}

#[derive(Debug, Clone)]
struct ModelEnvelope {
    agency: u32,
    reference: String,
    items: Vec<ModelItem>,
}

#[derive(Debug, Clone)]
struct ModelItem {
    disbursement_id: String,
    payee: u32,
    account: Account,
    amount: i64,
    status: ItemStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemStatus {
    /// Refused at sealing: its id was paid or is being paid.
    Flagged,
    Waiting,
    InProgress(EndToEndId),
    Paid(EndToEndId),
    Failed(EndToEndId, ReasonCode),
}

impl Model {
    fn position(&self, code: u32) -> i64 {
        self.open_nets.values().map(|nets| nets.get(&code).copied().unwrap_or(0)).sum()
    }

    fn available(&self, code: u32) -> i64 {
        self.cap[&code] + self.position(code) - self.reserved.get(&code).copied().unwrap_or(0)
    }

    fn settle(&mut self, payer: u32, payee: u32, amount: i64) {
        let nets = self.open_nets.entry(self.current_cycle).or_default();
        *nets.entry(payer).or_default() -= amount;
        *nets.entry(payee).or_default() += amount;
        self.settled_ids += 1;
    }

    /// The answer to a new payment, in the documented order of checks.
    fn new_payment(&self, payer: u32, payee: u32, amount: i64, amount_max: i64) -> Option<ReasonCode> {
        if amount > amount_max {
            return Some(ReasonCode::AmountNotAllowed);
        }
        if payee == payer {
            return Some(ReasonCode::OnUsPayment);
        }
        if !self.cap.contains_key(&payee) {
            return Some(ReasonCode::UnknownPayeeParticipant);
        }
        if !self.online.contains_key(&payee) {
            return Some(ReasonCode::PayeeOffline);
        }
        if self.available(payer) < amount {
            return Some(ReasonCode::InsufficientLiquidity);
        }
        None
    }
}

struct Sim {
    rng: SmallRng,
    now: TimestampMs,
    engine: Engine,
    journal: Vec<Vec<u8>>,
    /// A snapshot taken at a random point: (journal records it covers, bytes).
    snapshot: Option<(usize, Vec<u8>)>,
    model: Model,
    /// Ids in the order they were made, to pick from.
    ids: Vec<EndToEndId>,
    next_suffix: u64,
    amount_max: i64,
    /// For the failure message.
    seed: u64,
    step: usize,
    stats: Stats,
    /// What the driver's archive would hold: transfers past the duplicate
    /// window leave the engine for it.
    archive: SimArchive,
}

/// The archive as a driver keeps it, from the engine's archive ops. A
/// restart replays ops again: an op seen before must be the same op.
#[derive(Default)]
struct SimArchive {
    ops: Vec<ArchiveOp>,
    transfers: HashMap<EndToEndId, ArchivedTransfer>,
    late: HashMap<EndToEndId, Amount>,
    /// Items of complete envelopes, by (envelope number, index).
    items: HashMap<(u64, u32), ItemView>,
}

impl SimArchive {
    fn absorb(&mut self, ops: Vec<NumberedOp>) -> Result<(), String> {
        for NumberedOp { number, op } in ops {
            let number = number as usize;
            if number < self.ops.len() {
                if self.ops[number] != op {
                    return Err(format!("archive op {number} made again differs: {op:?}"));
                }
                continue;
            }
            if number != self.ops.len() {
                return Err(format!("archive op {number} after {} ops: a gap", self.ops.len()));
            }
            match &op {
                ArchiveOp::Transfer(archived) => {
                    self.transfers.insert(archived.transfer.id, (**archived).clone());
                }
                ArchiveOp::LateReturn { original, amount, .. } => {
                    let late = self.late.entry(*original).or_insert(Amount::ZERO);
                    *late = late.checked_add(*amount).unwrap();
                }
                ArchiveOp::EnvelopeItems(piece) => {
                    for item in &piece.items {
                        self.items.insert((piece.number, item.index), item.clone());
                    }
                }
            }
            self.ops.push(op);
        }
        Ok(())
    }

    fn late(&self, id: &EndToEndId) -> Amount {
        self.late.get(id).copied().unwrap_or(Amount::ZERO)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    settled: u64,
    rejected: u64,
    restarts: u64,
    restarts_from_snapshot: u64,
    returns: u64,
    keys_registered: u64,
    key_payments_reserved: u64,
    envelopes: u64,
    items_paid: u64,
    items_flagged: u64,
    claims_completed: u64,
    claims_lapsed: u64,
    archived: u64,
    archived_status: u64,
    /// Envelope items read back from the archive.
    archived_items: u64,
    archived_returns: u64,
}

/// The duplicate window: a minute (ids carry their minute), so window
/// entries are forgotten within a run.
const ID_AGE_MS: i64 = 60_000;

/// Final transfers keep their full record this long, then go to the
/// archive (the window entry answering resubmissions until ID_AGE_MS).
const FINAL_RECORD_MS: i64 = 3_000;

fn config() -> EngineConfig {
    EngineConfig {
        payee_timeout_ms: TIMEOUT_MS,
        cycle_close_every_ms: 0,
        claim_window_ms: CLAIM_WINDOW_MS,
        id_age_ms_max: ID_AGE_MS,
        id_future_skew_ms_max: 1_000,
        final_record_ms: FINAL_RECORD_MS,
        ..EngineConfig::default()
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let config = config();
        let amount_max = config.amount_max.minor();
        let mut sim = Sim {
            rng: SmallRng::seed_from_u64(seed),
            now: T0,
            engine: Engine::new(config),
            archive: SimArchive::default(),
            journal: Vec::new(),
            snapshot: None,
            model: Model { current_cycle: 1, ..Model::default() },
            ids: Vec::new(),
            next_suffix: 0,
            amount_max,
            seed,
            step: 0,
            stats: Stats::default(),
        };
        sim.engine.keep_archive_ops();
        for (i, code) in PARTICIPANTS.into_iter().enumerate() {
            let cap = [5_000_00, 2_000_00, 500_00, 100_00][i];
            let reply = sim.run(op::RegisterParticipant {
                id: pid(code),
                name: format!("P{code}"),
                net_debit_cap: Amount::from_minor(cap),
            });
            assert!(reply.is_ok());
            sim.model.cap.insert(code, cap);
            sim.open_inbox(code);
        }
        sim
    }

    fn fail(&self, what: impl std::fmt::Display) -> ! {
        panic!(
            "seed {} step {}: {what}\nreplay: PONTE_SIM_SEED={} cargo test -p ponte-switch --test simulation",
            self.seed, self.step, self.seed
        )
    }

    /// Runs an operation, journals its events, checks the final outcomes it
    /// produced against the model's expectations.
    fn run<O: Operation>(&mut self, operation: O) -> O::Result {
        let mut out = Output::default();
        let reply = self.engine.execute(self.now, operation, &mut out);
        self.absorb(out);
        reply
    }

    fn absorb(&mut self, out: Output) {
        let ops = self.engine.take_archive_ops();
        self.stats.archived += ops.iter().filter(|op| matches!(op.op, ArchiveOp::Transfer(_))).count() as u64;
        if let Err(e) = self.archive.absorb(ops) {
            self.fail(e);
        }
        self.learn_item_payments(&out.journal);
        if !out.journal.is_empty() {
            self.journal.push(out.journal);
        }
        for (id, outcome) in out.finals {
            self.final_seen(id, outcome);
        }
    }

    /// A final outcome: the model must hold the id pending and expect this.
    fn final_seen(&mut self, id: EndToEndId, outcome: Outcome) {
        let Some(t) = self.model.transfers.get(&id).cloned() else { self.fail(format!("final for unknown id {id}")) };
        match t.state {
            State::Final(previous) => self.fail(format!("{id} final twice: {previous:?} then {outcome:?}")),
            State::Pending { .. } => {}
        }
        let m = &mut self.model;
        *m.reserved.get_mut(&t.payer).unwrap() -= t.amount;
        match outcome {
            Outcome::Settled { .. } => {
                m.settle(t.payer, t.payee, t.amount);
                self.stats.settled += 1;
            }
            Outcome::Rejected { .. } => self.stats.rejected += 1,
        }
        if let Some(&(e, i)) = m.item_payments.get(&id) {
            m.envelopes[e].items[i].status = match outcome {
                Outcome::Settled { .. } => {
                    self.stats.items_paid += 1;
                    ItemStatus::Paid(id)
                }
                Outcome::Rejected { reason } => ItemStatus::Failed(id, reason),
            };
        }
        self.model.transfers.get_mut(&id).unwrap().state = State::Final(outcome);
    }

    /// Item payments the engine started in `journal`: each must be one the
    /// model holds waiting, and reserved or refused exactly as the model's
    /// rules say at that moment (the events come in the engine's order).
    fn learn_item_payments(&mut self, journal: &[u8]) {
        if self.model.envelopes.is_empty() {
            return;
        }
        let mut started: Option<(usize, usize, EndToEndId)> = None;
        for event in decode_events(journal) {
            let event = event.unwrap_or_else(|e| self.fail(format!("undecodable output: {e}")));
            match event {
                Event::EnvelopeItemStarted { number, index, id, .. } => {
                    let e = self.model.envelope_of.get(&number).copied().unwrap_or(usize::MAX);
                    let i = index as usize;
                    let Some(item) = self.model.envelopes.get(e).and_then(|env| env.items.get(i)) else {
                        self.fail(format!("started item {index} of unknown envelope {number}"))
                    };
                    if item.status != ItemStatus::Waiting {
                        self.fail(format!("started envelope {number} item {index}, which is {:?}", item.status));
                    }
                    started = Some((e, i, id));
                }
                Event::Reserved { id, .. } | Event::Refused { id, .. } if started.is_some_and(|s| s.2 == id) => {
                    let (e, i, _) = started.take().unwrap();
                    let item = self.model.envelopes[e].items[i].clone();
                    let agency = self.model.envelopes[e].agency;
                    let expected = self.model.new_payment(agency, item.payee, item.amount, self.amount_max);
                    let t = ModelTransfer {
                        payer: agency,
                        payee: item.payee,
                        amount: item.amount,
                        remittance: item.disbursement_id.clone(),
                        state: State::Pending { deadline: self.now + TIMEOUT_MS },
                        returned: 0,
                        original: None,
                        key: None,
                    };
                    self.ids.push(id);
                    self.model.item_payments.insert(id, (e, i));
                    match (event, expected) {
                        (Event::Reserved { .. }, None) => {
                            *self.model.reserved.entry(agency).or_default() += item.amount;
                            self.model.transfers.insert(id, t);
                            self.model.envelopes[e].items[i].status = ItemStatus::InProgress(id);
                        }
                        (Event::Refused { reason, .. }, Some(expected)) if reason == expected => {
                            self.model
                                .transfers
                                .insert(id, ModelTransfer { state: State::Final(Outcome::Rejected { reason }), ..t });
                            self.model.envelopes[e].items[i].status = ItemStatus::Failed(id, reason);
                            self.stats.rejected += 1;
                        }
                        (event, expected) => {
                            self.fail(format!("item payment {id}: engine {event:?}, model {expected:?}"))
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some((e, i, id)) = started {
            self.fail(format!("item {i} of envelope {} started as {id} but neither reserved nor refused", e + 1));
        }
    }

    /// A paying agency sends an envelope: some disbursement ids new, some
    /// reused from its earlier envelopes, now and then one repeated inside
    /// the envelope (the whole envelope is refused then).
    fn disburse(&mut self) {
        let agency = self.pick(&PARTICIPANTS);
        let serial = self.next_suffix as usize + 1;
        let count = self.rng.random_range(1..=6_usize);
        let earlier: Vec<String> =
            self.model.ledger.keys().filter(|(a, _)| *a == agency).map(|(_, id)| id.clone()).collect();
        let mut items: Vec<ModelItem> = Vec::with_capacity(count);
        for k in 0..count {
            let disbursement_id = if !earlier.is_empty() && self.rng.random_bool(0.3) {
                earlier[self.rng.random_range(0..earlier.len())].clone()
            } else {
                format!("d{}-{k}", self.next_suffix + k as u64)
            };
            let payee = if self.rng.random_bool(0.03) { STRANGER } else { self.pick(&PARTICIPANTS) };
            // A different account per item, so no beneficiary repeats.
            let account = account(payee, 5_000 + serial as u32 * 10 + k as u32);
            items.push(ModelItem {
                disbursement_id,
                payee,
                account,
                amount: self.rng.random_range(1..50_00),
                status: ItemStatus::Waiting,
            });
        }
        self.next_suffix += count as u64;
        if count > 1 && self.rng.random_bool(0.05) {
            items[count - 1].disbursement_id = items[0].disbursement_id.clone();
        }
        let total: i64 = items.iter().map(|i| i.amount).sum();
        let header = EnvelopeHeader {
            agency: pid(agency),
            reference: format!("env{serial}"),
            programme: "sim".into(),
            cycle_reference: "2026-12".into(),
            currency: ponte_domain::CURRENCY.into(),
            paying_account: account(agency, 1),
            control_count: count as u32,
            control_total: Amount::from_minor(total),
        };
        let caller = pid(agency);
        let number = match self.run(op::OpenEnvelope { caller, header, digest: serial as u128 }) {
            Ok(view) => view.number,
            other => self.fail(format!("opening envelope {serial}: {other:?}")),
        };
        self.model.envelopes_opened += 1;
        if number != self.model.envelopes_opened {
            self.fail(format!("envelope numbered {number}, model expected {}", self.model.envelopes_opened));
        }
        // The model's rules: an id twice in one envelope refuses it whole;
        // an id whose latest item is waiting, in progress or paid is flagged.
        let mut seen = std::collections::HashSet::new();
        let repeated = items.iter().any(|i| !seen.insert(i.disbursement_id.clone()));
        for item in &mut items {
            let live = self.model.ledger.get(&(agency, item.disbursement_id.clone())).is_some_and(|&(e, i)| {
                matches!(
                    self.model.envelopes[e].items[i].status,
                    ItemStatus::Waiting | ItemStatus::InProgress(_) | ItemStatus::Paid(_)
                )
            });
            if live {
                item.status = ItemStatus::Flagged;
            }
        }
        let wire: Vec<EnvelopeItem> = items
            .iter()
            .map(|i| EnvelopeItem {
                disbursement_id: i.disbursement_id.clone(),
                beneficiary: Beneficiary::Account(i.account),
                amount: Amount::from_minor(i.amount),
                narrative: i.disbursement_id.clone(),
            })
            .collect();
        let added = self.run(op::AddEnvelopeItems { caller, number, items: wire });
        match (&added, repeated) {
            (Err(EnvelopeError::RepeatedDisbursementId(_)), true) => return,
            (Ok(_), false) => {}
            _ => self.fail(format!("adding envelope {serial}'s items (repeated id: {repeated}): {added:?}")),
        }
        match self.run(op::SealEnvelope { caller, number }) {
            Ok(view) => {
                let flagged = items.iter().filter(|i| i.status == ItemStatus::Flagged).count() as u32;
                if view.failed_count != flagged {
                    self.fail(format!("envelope {serial}: engine flagged {}, model {flagged}", view.failed_count));
                }
            }
            other => self.fail(format!("sealing envelope {serial}: {other:?}")),
        }
        let e = self.model.envelopes.len();
        self.model.envelope_of.insert(number, e);
        for (i, item) in items.iter().enumerate() {
            if item.status != ItemStatus::Flagged {
                self.model.ledger.insert((agency, item.disbursement_id.clone()), (e, i));
            } else {
                self.stats.items_flagged += 1;
            }
        }
        self.model.envelopes.push(ModelEnvelope { agency, reference: format!("env{serial}"), items });
        self.stats.envelopes += 1;
        self.drive();
    }

    /// The runtime's pacing: start whatever items may start now.
    fn drive(&mut self) {
        if !self.engine.disbursements().has_work() {
            return;
        }
        let mut out = Output::default();
        self.engine.drive_disbursements(self.now, 1_000, 1_000, &mut out);
        self.absorb(out);
    }

    /// Every item's outcome in the engine equals the model's; no
    /// disbursement id is paid twice.
    fn check_items(&mut self) {
        self.drive();
        let mut paid = std::collections::HashSet::new();
        for e in 0..self.model.envelopes.len() {
            let envelope = self.model.envelopes[e].clone();
            let reply = self.run(op::EnvelopeItems {
                caller: Some(pid(envelope.agency)),
                agency: pid(envelope.agency),
                reference: envelope.reference.clone(),
                offset: 0,
                limit: 100,
            });
            let Ok(page) = reply else { self.fail(format!("items of {}: {reply:?}", envelope.reference)) };
            // Items of a complete envelope that left memory: from the archive.
            let mut views = Vec::new();
            if let Some(range) = page.archived {
                if (range.mark.ops as usize) > self.archive.ops.len() {
                    self.fail(format!(
                        "the archive has {} ops, the engine's mark {:?}",
                        self.archive.ops.len(),
                        range.mark
                    ));
                }
                self.stats.archived_items += u64::from(range.to - range.from);
                for index in range.from..range.to {
                    let Some(item) = self.archive.items.get(&(range.number, index)) else {
                        self.fail(format!("{} item {index} is neither in memory nor archived", envelope.reference))
                    };
                    views.push(item.clone());
                }
            }
            views.extend(page.items);
            for (view, item) in views.iter().zip(&envelope.items) {
                let agrees = match (view.outcome, item.status) {
                    (ItemOutcome::Waiting, ItemStatus::Waiting) => true,
                    (ItemOutcome::InProgress { id }, ItemStatus::InProgress(m)) => id == m,
                    (ItemOutcome::Paid { id, .. }, ItemStatus::Paid(m)) => id == m,
                    (ItemOutcome::Failed { reason: ReasonCode::DuplicatePayment, id: None }, ItemStatus::Flagged) => {
                        true
                    }
                    (ItemOutcome::Failed { reason, id: Some(id) }, ItemStatus::Failed(m, r)) => id == m && reason == r,
                    _ => false,
                };
                if !agrees || views.len() != envelope.items.len() {
                    self.fail(format!(
                        "{} item {}: engine {:?}, model {:?}",
                        envelope.reference, view.index, view.outcome, item.status
                    ));
                }
                // Only an item whose payee is a participant with no inbox open waits.
                let may_wait = self.model.cap.contains_key(&item.payee) && !self.model.online.contains_key(&item.payee);
                if item.status == ItemStatus::Waiting && !may_wait {
                    self.fail(format!(
                        "{} item {} still waits though payee {} can be paid",
                        envelope.reference, view.index, item.payee
                    ));
                }
                if matches!(item.status, ItemStatus::Paid(_))
                    && !paid.insert((envelope.agency, item.disbursement_id.clone()))
                {
                    self.fail(format!("disbursement id {} of {} paid twice", item.disbursement_id, envelope.agency));
                }
            }
        }
    }

    /// A participant claims a phone key for its customer (ownership) or
    /// ports it in for the key's owner (portability).
    fn open_claim(&mut self) {
        let claimer = self.pick(&PARTICIPANTS);
        let phone = self.rng.random_range(0..20_u32);
        let kind = if self.rng.random_bool(0.5) { ClaimKind::Ownership } else { ClaimKind::Portability };
        let account = account(claimer, 100 + self.rng.random_range(0..3));
        let holder = self.model.keys.get(&phone).copied();
        let expected = match holder {
            None => Err(ClaimError::Directory(DirectoryError::NotFound)),
            Some(held) if kind == ClaimKind::Portability && held.participant == pid(claimer) => {
                Err(ClaimError::AlreadyHeld)
            }
            Some(_) if self.model.claim_in_progress(phone) => Err(ClaimError::ClaimInProgress),
            Some(held) if held != account && self.model.keys_on(account) >= 5 => {
                Err(ClaimError::Directory(DirectoryError::TooManyKeys { max: 5 }))
            }
            Some(held) => Ok(held.participant.code()),
        };
        let reply = self.run(op::OpenClaim {
            caller: pid(claimer),
            kind,
            key: phone_key(phone),
            account,
            owner: Owner { kind: OwnerKind::Person, id: "52998224725".into(), name: "Maria Souza".into() },
        });
        match (expected, reply) {
            (Ok(donor), Ok(claim))
                if claim.donor == pid(donor) && claim.claimer == pid(claimer) && claim.status == ClaimStatus::Open =>
            {
                if self.model.claims.contains_key(&claim.id) {
                    self.fail(format!("claim id {} given twice", claim.id));
                }
                self.model.claims.insert(
                    claim.id,
                    ModelClaim {
                        kind,
                        phone,
                        claimer,
                        donor,
                        account,
                        status: ClaimStatus::Open,
                        resolve_by: self.now + CLAIM_WINDOW_MS,
                    },
                );
            }
            (Err(e), Err(got)) if e == got => {}
            (expected, reply) => {
                self.fail(format!("{kind:?} claim on phone {phone} by {claimer}: expected {expected:?}, got {reply:?}"))
            }
        }
    }

    /// Someone acts on a claim: its donor, its claimer or a stranger to
    /// it, any action (most of them wrong for the moment).
    fn act_on_claim(&mut self) {
        let ids: Vec<u64> = self.model.claims.keys().copied().collect();
        let id = if ids.is_empty() || self.rng.random_bool(0.05) { 999_999 } else { self.pick(&ids) };
        let action =
            self.pick(&[ClaimAction::Acknowledge, ClaimAction::Confirm, ClaimAction::Cancel, ClaimAction::Complete]);
        let claim = self.model.claims.get(&id).cloned();
        let actor = match (&claim, self.rng.random_range(0..5)) {
            (Some(c), 0 | 1) => c.donor,
            (Some(c), 2 | 3) => c.claimer,
            _ => self.pick(&PARTICIPANTS),
        };
        // The rules, as docs and the claims module state them.
        use ClaimAction as A;
        use ClaimStatus as S;
        let expected: Result<ClaimStatus, ClaimError> = match &claim {
            None => Err(ClaimError::UnknownClaim),
            Some(c) => {
                let (donor, claimer) = (actor == c.donor, actor == c.claimer);
                match (action, c.status) {
                    (A::Acknowledge, S::Open) if donor => Ok(S::WaitingResolution),
                    (A::Confirm, S::Open | S::WaitingResolution) if donor => Ok(S::Confirmed),
                    (A::Cancel, S::Open | S::WaitingResolution) if donor || claimer => Ok(S::Cancelled),
                    (A::Cancel, S::Confirmed) if claimer => Ok(S::Cancelled),
                    (A::Cancel, S::Confirmed) if donor => Err(ClaimError::WrongParty("claimer")),
                    // The claimer's account may have filled up meanwhile.
                    (A::Complete, S::Confirmed)
                        if claimer
                            && self.model.keys.get(&c.phone) != Some(&c.account)
                            && self.model.keys_on(c.account) >= 5 =>
                    {
                        Err(ClaimError::Directory(DirectoryError::TooManyKeys { max: 5 }))
                    }
                    (A::Complete, S::Confirmed) if claimer => Ok(S::Completed),
                    (A::Acknowledge | A::Confirm, S::Open | S::WaitingResolution) => {
                        Err(ClaimError::WrongParty("donor"))
                    }
                    (A::Complete, S::Confirmed) => Err(ClaimError::WrongParty("claimer")),
                    (A::Cancel, S::Open | S::WaitingResolution) => Err(ClaimError::WrongParty("claimer or donor")),
                    (_, status) => Err(ClaimError::WrongStatus(status)),
                }
            }
        };
        let reply = self.run(op::ActOnClaim { caller: pid(actor), id, action });
        match (expected, reply) {
            (Ok(status), Ok(got)) if got.status == status && got.id == id => {
                let c = self.model.claims.get_mut(&id).unwrap();
                c.status = status;
                if status == S::Completed {
                    // The key now points at the claimer's account.
                    self.model.keys.insert(c.phone, c.account);
                    self.stats.claims_completed += 1;
                }
            }
            (Err(e), Err(got)) if e == got => {}
            (expected, reply) => {
                self.fail(format!("{action:?} on claim {id} by {actor}: expected {expected:?}, got {reply:?}"))
            }
        }
    }

    fn open_inbox(&mut self, code: u32) {
        self.run(op::InboxOpened(pid(code)));
        *self.model.online.entry(code).or_default() += 1;
    }

    fn new_id(&mut self, kind: IdKind, code: u32) -> EndToEndId {
        self.next_suffix += 1;
        let suffix = format!("{:011}", self.next_suffix);
        EndToEndId::from_parts(kind, pid(code), self.now, suffix.as_bytes().try_into().unwrap())
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn order(&self, id: EndToEndId, t: &ModelTransfer) -> PaymentOrder {
        PaymentOrder {
            id,
            payer: account(t.payer, 1),
            payee: if t.key.is_some() { Account::unresolved() } else { account(t.payee, 2) },
            payee_key: t.key.clone(),
            lookup_by: None,
            amount: Amount::from_minor(t.amount),
            remittance: t.remittance.clone(),
        }
    }

    fn pay(&mut self) {
        let payer = self.pick(&PARTICIPANTS);
        let payee = if self.rng.random_bool(0.03) { STRANGER } else { self.pick(&PARTICIPANTS) };
        let amount = match self.rng.random_range(0..100) {
            0 => self.amount_max + 1,
            1..=10 => self.rng.random_range(100_00..3_000_00),
            _ => self.rng.random_range(1..100_00),
        };
        let id = self.new_id(IdKind::Payment, payer);
        let expected = self.model.new_payment(payer, payee, amount, self.amount_max);
        if expected.is_none() {
            // The model's limit check, stated as an invariant.
            assert!(self.model.available(payer) >= amount);
        }
        let t = ModelTransfer {
            payer,
            payee,
            amount,
            remittance: format!("r{}", self.rng.random_range(0..3)),
            state: State::Pending { deadline: self.now + TIMEOUT_MS },
            returned: 0,
            original: None,
            key: None,
        };
        if !self.submit_new(id, t, expected) {
            self.fail(format!("new payment {id} {payer}->{payee} {amount}: expected {expected:?}"));
        }
    }

    /// Submits a new payment the model expects to be reserved (`None`) or
    /// refused with a reason, records it in the model, and says whether the
    /// engine agreed.
    fn submit_new(&mut self, id: EndToEndId, mut t: ModelTransfer, expected: Option<ReasonCode>) -> bool {
        let reply = self.run(op::Submit(self.order(id, &t)));
        self.ids.push(id);
        match (expected, &reply) {
            (None, Submitted::Pending) => {
                *self.model.reserved.entry(t.payer).or_default() += t.amount;
                self.model.transfers.insert(id, t);
                true
            }
            (Some(reason), Submitted::Final(Outcome::Rejected { reason: got })) if *got == reason => {
                t.state = State::Final(Outcome::Rejected { reason });
                self.model.transfers.insert(id, t);
                self.stats.rejected += 1;
                true
            }
            _ => {
                eprintln!("engine answered {reply:?}");
                false
            }
        }
    }

    fn resubmit(&mut self, modified: bool) {
        let payments: Vec<EndToEndId> = self
            .ids
            .iter()
            .copied()
            // Item payments have engine-made ids no client resubmits.
            .filter(|id| {
                self.model.transfers.get(id).is_some_and(|t| t.original.is_none())
                    && !self.model.item_payments.contains_key(id)
            })
            .collect();
        if payments.is_empty() {
            return;
        }
        let id = self.pick(&payments);
        let mut t = self.model.transfers[&id].clone();
        if modified {
            t.remittance.push('!');
        }
        let reply = self.run(op::Submit(self.order(id, &t)));
        let past_window = id.created_at_ms().unwrap() < self.now - ID_AGE_MS;
        let ok = match (modified, t.state, &reply) {
            // Past the duplicate window an id is refused for its age (never
            // paid again), whether or not its transfer is still in memory.
            (_, State::Final(_), Submitted::Final(Outcome::Rejected { reason: ReasonCode::IdTimestampOutOfRange }))
                if past_window =>
            {
                true
            }
            (true, _, Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified })) => true,
            (false, State::Pending { .. }, Submitted::Pending) => true,
            (false, State::Final(expected), Submitted::Final(got)) => expected == *got,
            _ => false,
        };
        if !ok {
            self.fail(format!("resubmitted {id} (modified: {modified}, model {:?}): got {reply:?}", t.state));
        }
    }

    fn answer(&mut self) {
        let pending: Vec<EndToEndId> = self
            .ids
            .iter()
            .copied()
            .filter(|id| matches!(self.model.transfers.get(id).map(|t| t.state), Some(State::Pending { .. })))
            .collect();
        let (id, right_payee) = match (pending.is_empty(), self.rng.random_range(0..10)) {
            // An answer for a payment that is final already (late or twice).
            (_, 0) | (true, _) => {
                if self.ids.is_empty() {
                    return;
                }
                let id = self.pick(&self.ids.clone());
                (id, true)
            }
            // Someone else answering a payee's payment.
            (false, 1) => (self.pick(&pending), false),
            _ => (self.pick(&pending), true),
        };
        let t = self.model.transfers.get(&id).cloned();
        let Some(t) = t else { return };
        let payee = if right_payee { t.payee } else { *PARTICIPANTS.iter().find(|&&p| p != t.payee).unwrap() };
        let decision = match self.rng.random_range(0..10) {
            0 => Decision::Reject(ReasonCode::ClosedAccount),
            1 => Decision::Reject(ReasonCode::InsufficientLiquidity), // a switch-only code: becomes DS04
            _ => Decision::Accept,
        };
        let settled_before = self.model.settled_ids;
        let finals_before = self.stats;
        self.run(op::Answer { payee: pid(payee), id, decision });
        // A final outcome only for a pending payment answered by its payee.
        let answered = matches!(t.state, State::Pending { .. }) && right_payee && t.original.is_none();
        let expected = answered.then_some(match decision {
            Decision::Accept => None,
            Decision::Reject(ReasonCode::ClosedAccount) => Some(ReasonCode::ClosedAccount),
            Decision::Reject(_) => Some(ReasonCode::RejectedByPayee),
        });
        let state = self.model.transfers[&id].state;
        match expected {
            None if finals_before.settled + finals_before.rejected != self.stats.settled + self.stats.rejected => {
                self.fail(format!("an answer that should change nothing finalised {id}"))
            }
            Some(None) if !matches!(state, State::Final(Outcome::Settled { .. })) => {
                self.fail(format!("accepted {id} is {state:?}"))
            }
            Some(Some(reason)) if state != State::Final(Outcome::Rejected { reason }) => {
                self.fail(format!("rejected {id} with {reason:?} is {state:?}"))
            }
            _ => {}
        }
        if expected.is_none() && self.model.settled_ids != settled_before {
            self.fail("a stray answer settled something");
        }
    }

    /// A status query by the payer, answered from memory or the archive,
    /// against the model.
    fn status(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let id = self.pick(&self.ids.clone());
        let Some(t) = self.model.transfers.get(&id).cloned() else { return };
        let view = match self.run(op::Status { caller: pid(t.payer), id }) {
            Ok(view) => view,
            Err(mark) => {
                if (mark.ops as usize) > self.archive.ops.len() {
                    self.fail(format!("the archive has {} ops, the engine's mark {mark:?}", self.archive.ops.len()));
                }
                self.stats.archived_status += 1;
                self.archive.transfers.get(&id).and_then(|a| a.view_for(pid(t.payer), self.archive.late(&id)))
            }
        };
        let Some(view) = view else {
            // Every id the model holds was recorded, and the payer sees it.
            self.fail(format!("{id} ({t:?}) is neither in memory nor in the archive"))
        };
        let expected = match t.state {
            State::Pending { .. } => ponte_domain::TransferState::Reserved,
            State::Final(Outcome::Settled { .. }) => ponte_domain::TransferState::Settled,
            State::Final(Outcome::Rejected { .. }) => ponte_domain::TransferState::Rejected,
        };
        let returned = if t.original.is_none() { t.returned } else { 0 };
        if (view.state, view.returned.minor()) != (expected, returned) {
            self.fail(format!("status of {id}: {view:?}, model {t:?}"));
        }
        if let State::Final(Outcome::Rejected { reason }) = t.state
            && view.reason != Some(reason)
        {
            self.fail(format!("status of {id}: reason {:?}, model {reason:?}", view.reason));
        }
    }

    fn advance(&mut self) {
        self.now += self.rng.random_range(0..TIMEOUT_MS * 3 / 2);
        let due: Vec<EndToEndId> = self
            .model
            .transfers
            .iter()
            .filter(|(_, t)| matches!(t.state, State::Pending { deadline } if deadline <= self.now))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Output::default();
        self.engine.expire(self.now, &mut out);
        self.absorb(out);
        self.lapse_claims();
        for id in due {
            let state = self.model.transfers[&id].state;
            if state != State::Final(Outcome::Rejected { reason: ReasonCode::PayeeTimeout }) {
                self.fail(format!("{id} past its deadline is {state:?}, not AB03"));
            }
        }
    }

    /// The model's side of expiry for claims: windows that lapsed confirm
    /// ownership claims (the holder did not defend the key) and cancel
    /// portability claims.
    fn lapse_claims(&mut self) {
        for claim in self.model.claims.values_mut() {
            if matches!(claim.status, ClaimStatus::Open | ClaimStatus::WaitingResolution)
                && claim.resolve_by <= self.now
            {
                claim.status = match claim.kind {
                    ClaimKind::Ownership => ClaimStatus::Confirmed,
                    ClaimKind::Portability => ClaimStatus::Cancelled,
                };
                self.stats.claims_lapsed += 1;
            }
        }
    }

    fn give_back(&mut self) {
        let settled: Vec<EndToEndId> =
            self.ids
                .iter()
                .copied()
                .filter(|id| {
                    self.model.transfers.get(id).is_some_and(|t| {
                        t.original.is_none() && matches!(t.state, State::Final(Outcome::Settled { .. }))
                    })
                })
                .collect();
        if settled.is_empty() {
            return;
        }
        let original = self.pick(&settled);
        let o = self.model.transfers[&original].clone();
        let left = o.amount - o.returned;
        let amount = if self.rng.random_bool(0.2) { left + 1 } else { self.rng.random_range(1..=left.max(1)) };
        let id = self.new_id(IdKind::Return, o.payee);
        let reason = ReasonCode::RefundRequested;
        let expected = if amount > left {
            Some(ReasonCode::ReturnExceedsOriginal)
        } else if self.model.available(o.payee) < amount {
            Some(ReasonCode::InsufficientLiquidity)
        } else {
            None
        };
        let order = ReturnOrder {
            returner: pid(o.payee),
            id,
            original,
            amount: Amount::from_minor(amount),
            reason,
            remittance: String::new(),
        };
        let mut reply = self.run(op::Return(order.clone(), None));
        if let Submitted::NotHeld(mark) = reply {
            // The driver reads the original from the archive, which holds
            // every op the mark names (this one absorbs them at once).
            if (mark.ops as usize) > self.archive.ops.len() {
                self.fail(format!("the archive has {} ops, the engine's mark {mark:?}", self.archive.ops.len()));
            }
            let Some(archived) = self.archive.transfers.get(&original).cloned() else {
                self.fail(format!("settled {original} is neither in memory nor archived"))
            };
            self.stats.archived_returns += 1;
            reply = self.run(op::Return(order, Some(Box::new(archived))));
        }
        let outcome = match (expected, &reply) {
            (None, Submitted::Final(outcome @ Outcome::Settled { .. })) => *outcome,
            (Some(r), Submitted::Final(outcome @ Outcome::Rejected { reason: got })) if *got == r => *outcome,
            _ => self.fail(format!(
                "return {id} of {original} ({amount}, {left} left): expected {expected:?}, got {reply:?}"
            )),
        };
        if matches!(outcome, Outcome::Settled { .. }) {
            self.model.settle(o.payee, o.payer, amount);
            self.model.transfers.get_mut(&original).unwrap().returned += amount;
            self.stats.returns += 1;
        }
        self.ids.push(id);
        self.model.transfers.insert(
            id,
            ModelTransfer {
                payer: o.payee,
                payee: o.payer,
                amount,
                remittance: String::new(),
                state: State::Final(outcome),
                returned: 0,
                original: Some((original, reason)),
                key: None,
            },
        );
    }

    fn register_key(&mut self) {
        let holder = self.pick(&PARTICIPANTS);
        let phone = self.rng.random_range(0..20_u32);
        let account = account(holder, 100 + self.rng.random_range(0..3));
        let expected = if self.model.keys.contains_key(&phone) {
            Err(DirectoryError::KeyExists)
        } else if self.model.keys_on(account) >= 5 {
            Err(DirectoryError::TooManyKeys { max: 5 })
        } else {
            Ok(())
        };
        let reply = self.run(op::RegisterKey {
            caller: pid(holder),
            key: NewKey::Chosen { kind: KeyType::Phone, value: phone_text(phone) },
            account,
            owner: Owner { kind: OwnerKind::Person, id: "52998224725".into(), name: "Maria Souza".into() },
        });
        match (expected, reply) {
            (Ok(()), Ok(entry)) if entry.account == account => {
                self.model.keys.insert(phone, account);
                self.stats.keys_registered += 1;
            }
            (Err(e), Err(got)) if e == got => {}
            (expected, reply) => {
                self.fail(format!("register phone {phone} at {account:?}: expected {expected:?}, got {reply:?}"))
            }
        }
    }

    fn delete_key(&mut self) {
        let caller = self.pick(&PARTICIPANTS);
        let phone = self.rng.random_range(0..20_u32);
        let expected = match self.model.keys.get(&phone) {
            None => Err(DirectoryError::NotFound),
            Some(a) if a.participant != pid(caller) => Err(DirectoryError::NotHolder),
            // A key with a claim in progress stays until the claim ends.
            Some(_) if self.model.claim_in_progress(phone) => Err(DirectoryError::KeyExists),
            Some(_) => Ok(()),
        };
        let reply = self.run(op::DeleteKey { caller: pid(caller), key: phone_key(phone) });
        match (expected, reply) {
            (Ok(()), Ok(_)) => {
                self.model.keys.remove(&phone);
            }
            (Err(e), Err(got)) if e == got => {}
            (expected, reply) => {
                self.fail(format!("delete phone {phone} by {caller}: expected {expected:?}, got {reply:?}"))
            }
        }
    }

    fn pay_key(&mut self) {
        let payer = self.pick(&PARTICIPANTS);
        let phone = self.rng.random_range(0..20_u32);
        let amount = self.rng.random_range(1..50_00);
        let id = self.new_id(IdKind::Payment, payer);
        let holder = self.model.keys.get(&phone).map(|a| a.participant.code());
        let expected = match holder {
            None => Some(ReasonCode::UnknownKey),
            Some(payee) => self.model.new_payment(payer, payee, amount, self.amount_max),
        };
        let t = ModelTransfer {
            payer,
            payee: holder.unwrap_or(0),
            amount,
            remittance: String::new(),
            state: State::Pending { deadline: self.now + TIMEOUT_MS },
            returned: 0,
            original: None,
            key: Some(phone_key(phone)),
        };
        if !self.submit_new(id, t, expected) {
            self.fail(format!("payment {id} to phone {phone} ({holder:?}): expected {expected:?}"));
        }
        if expected.is_none() {
            self.stats.key_payments_reserved += 1;
            let delivered = self.engine.transfer(&id).map(|t| t.payee);
            if delivered != self.model.keys.get(&phone).copied() {
                self.fail(format!("{id} to phone {phone} went to {delivered:?}"));
            }
        }
    }

    fn set_limit(&mut self) {
        let code = self.pick(&PARTICIPANTS);
        let cap = self.rng.random_range(0..6_000_00);
        let reply = self.run(op::SetLimit { id: pid(code), net_debit_cap: Amount::from_minor(cap) });
        assert!(reply.is_ok(), "{reply:?}");
        self.model.cap.insert(code, cap);
    }

    fn inbox_churn(&mut self) {
        let code = self.pick(&PARTICIPANTS);
        if self.model.online.contains_key(&code) && self.rng.random_bool(0.5) {
            self.run(op::InboxClosed(pid(code)));
            let count = self.model.online.get_mut(&code).unwrap();
            *count -= 1;
            if *count == 0 {
                self.model.online.remove(&code);
            }
        } else {
            self.open_inbox(code);
        }
    }

    fn cycles(&mut self) {
        if self.rng.random_bool(0.5) || self.model.closed.is_empty() {
            let header = self.run(op::CloseCycle);
            if header.id != self.model.current_cycle {
                self.fail(format!(
                    "closed cycle {} but the model's open one is {}",
                    header.id, self.model.current_cycle
                ));
            }
            self.model.closed.push(header.id);
            self.model.current_cycle += 1;
        } else {
            let id = self.model.closed.remove(0);
            let reply = self.run(op::ConfirmCycle { id });
            if reply.is_err() {
                self.fail(format!("confirming cycle {id}: {reply:?}"));
            }
            self.model.open_nets.remove(&id);
        }
    }

    /// Rebuilds the engine from the journal and checks it is the same
    /// ledger; inboxes do not survive a restart, so payees reconnect.
    /// Applies the journal's records from `from` to `engine`, as a replay does.
    fn replay_into(&self, engine: &mut Engine, from: usize) {
        for record in &self.journal[from..] {
            for event in decode_events(record) {
                engine.apply(&event.unwrap_or_else(|e| self.fail(format!("undecodable journal: {e}"))));
            }
        }
    }

    fn restart(&mut self) {
        let mut rebuilt = Engine::new(config());
        rebuilt.keep_archive_ops();
        self.replay_into(&mut rebuilt, 0);
        // A replay makes the archive ops again, the same ones.
        if let Err(e) = self.archive.absorb(rebuilt.take_archive_ops()) {
            self.fail(format!("replay: {e}"));
        }
        if let Err(e) = rebuilt.check_invariants() {
            self.fail(format!("the replayed ledger breaks an invariant: {e}"));
        }
        if rebuilt.transfer_count() != self.engine.transfer_count() {
            self.fail("replay lost or invented transfers");
        }
        for code in PARTICIPANTS {
            let (a, b) = (self.engine.participant(pid(code)).unwrap(), rebuilt.participant(pid(code)).unwrap());
            if (a.position, a.reserved, a.net_debit_cap) != (b.position, b.reserved, b.net_debit_cap) {
                self.fail(format!("participant {code} differs after replay"));
            }
            let digest = |e: &Engine| e.directory().registry.digest_of(pid(code));
            if digest(&self.engine) != digest(&rebuilt) {
                self.fail(format!("participant {code}'s keys differ after replay"));
            }
        }
        for id in &self.ids {
            let state = |e: &Engine| e.transfer(id).map(|t| (t.state, t.reason, t.returned));
            if state(&self.engine) != state(&rebuilt) {
                self.fail(format!("{id} differs after replay"));
            }
        }
        let records = self.journal.len() as u64;
        let live = self.engine.snapshot(records);
        if rebuilt.snapshot(records) != live {
            self.fail("the replayed engine's snapshot differs from the live engine's");
        }
        if let Some((cut, bytes)) = self.snapshot.take() {
            let (mut restored, _) = Engine::restore(config(), &bytes)
                .unwrap_or_else(|e| self.fail(format!("the snapshot at record {cut} does not restore: {e}")));
            restored.keep_archive_ops();
            self.replay_into(&mut restored, cut);
            if let Err(e) = self.archive.absorb(restored.take_archive_ops()) {
                self.fail(format!("snapshot + tail: {e}"));
            }
            if restored.snapshot(records) != live {
                self.fail(format!(
                    "the snapshot at record {cut} plus the journal after it differs from the live engine"
                ));
            }
            if self.rng.random_bool(0.5) {
                rebuilt = restored;
                self.stats.restarts_from_snapshot += 1;
            }
        }
        self.engine = rebuilt;
        self.stats.restarts += 1;
        let online: Vec<u32> = self.model.online.keys().copied().collect();
        self.model.online.clear();
        for code in online {
            self.open_inbox(code);
        }
    }

    /// The engine against the model, and the invariants, after every step.
    fn check(&self) {
        if let Err(e) = self.engine.check_invariants() {
            self.fail(format!("engine invariant: {e}"));
        }
        let mut sum = 0;
        for code in PARTICIPANTS {
            let p = self.engine.participant(pid(code)).unwrap();
            let (position, reserved) =
                (self.model.position(code), self.model.reserved.get(&code).copied().unwrap_or(0));
            if (p.position.minor(), p.reserved.minor()) != (position, reserved) {
                self.fail(format!(
                    "participant {code}: engine position {} reserved {}, model {position} {reserved}",
                    p.position, p.reserved
                ));
            }
            sum += position;
        }
        if sum != 0 {
            self.fail(format!("positions sum to {sum}"));
        }
        for phone in 0..20 {
            let held = self.engine.directory().registry.get(&phone_key(phone)).map(|e| e.account);
            if held != self.model.keys.get(&phone).copied() {
                self.fail(format!("phone {phone}: engine {held:?}, model {:?}", self.model.keys.get(&phone)));
            }
        }
        for (id, c) in &self.model.claims {
            let status = self.engine.directory().claims.get(*id).map(|e| e.status);
            if status != Some(c.status) {
                self.fail(format!("claim {id}: engine {status:?}, model {:?}", c.status));
            }
        }
        for (id, t) in &self.model.transfers {
            if t.original.is_none() && t.returned > t.amount {
                self.fail(format!("{id} returned {} of {}", t.returned, t.amount));
            }
        }
    }

    fn step(&mut self) {
        self.drive();
        if self.rng.random_range(0..30) == 0 {
            let records = self.journal.len();
            self.snapshot = Some((records, self.engine.snapshot(records as u64)));
        }
        match self.rng.random_range(0..120) {
            110..=113 => self.disburse(),
            114..=115 => self.open_claim(),
            116..=119 => self.act_on_claim(),
            100..=103 => self.register_key(),
            104..=105 => self.delete_key(),
            106..=109 => self.pay_key(),
            0..=34 => self.pay(),
            35..=39 => self.resubmit(false),
            40..=42 => self.resubmit(true),
            43..=69 => self.answer(),
            70..=79 => self.advance(),
            80..=86 => self.give_back(),
            87..=89 => self.set_limit(),
            90..=93 => self.inbox_churn(),
            94..=95 => self.cycles(),
            96 => self.status(),
            _ => self.restart(),
        }
        self.check();
        if self.step.is_multiple_of(25) {
            self.check_items();
            self.status();
        }
    }
}

fn phone_text(n: u32) -> String {
    format!("+55619888800{n:02}")
}

fn phone_key(n: u32) -> Key {
    parse(&Brazil, KeyType::Phone, &phone_text(n)).unwrap()
}

fn run_seed(seed: u64) -> Stats {
    let mut sim = Sim::new(seed);
    for step in 0..STEPS {
        sim.step = step;
        sim.step();
    }
    // Everything still pending times out; the ledger rebuilt at the end is the same.
    sim.now += TIMEOUT_MS * 2;
    let mut out = Output::default();
    sim.engine.expire(sim.now, &mut out);
    sim.absorb(out);
    sim.lapse_claims();
    sim.check();
    sim.check_items();
    sim.restart();
    sim.check();
    sim.check_items();
    sim.stats
}

#[test]
fn the_engine_matches_the_reference_model_under_random_workloads() {
    let seeds: Vec<u64> = match std::env::var("PONTE_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("PONTE_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("PONTE_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS_CI);
            (0..count).collect()
        }
    };
    let mut total = Stats::default();
    for &seed in &seeds {
        let stats = run_seed(seed);
        total.settled += stats.settled;
        total.rejected += stats.rejected;
        total.restarts += stats.restarts;
        total.restarts_from_snapshot += stats.restarts_from_snapshot;
        total.returns += stats.returns;
        total.keys_registered += stats.keys_registered;
        total.key_payments_reserved += stats.key_payments_reserved;
        total.envelopes += stats.envelopes;
        total.items_paid += stats.items_paid;
        total.items_flagged += stats.items_flagged;
        total.claims_completed += stats.claims_completed;
        total.claims_lapsed += stats.claims_lapsed;
        total.archived += stats.archived;
        total.archived_status += stats.archived_status;
        total.archived_returns += stats.archived_returns;
        total.archived_items += stats.archived_items;
    }
    eprintln!(
        "{} seeds x {STEPS} steps: {} settled, {} rejected, {} returns, {} restarts ({} from a snapshot), {} keys registered, {} key payments reserved, {} envelopes ({} items paid, {} flagged DUPL), {} claims completed, {} lapsed; {} transfers archived, {} status answers, {} returns and {} envelope items from the archive",
        seeds.len(),
        total.settled,
        total.rejected,
        total.returns,
        total.restarts,
        total.restarts_from_snapshot,
        total.keys_registered,
        total.key_payments_reserved,
        total.envelopes,
        total.items_paid,
        total.items_flagged,
        total.claims_completed,
        total.claims_lapsed,
        total.archived,
        total.archived_status,
        total.archived_returns,
        total.archived_items
    );
    assert!(total.settled > seeds.len() as u64 * 50, "the workload settled too little to prove anything: {total:?}");
    assert!(total.restarts > 0 && total.returns > 0, "{total:?}");
    assert!(total.archived > 0 && total.archived_status > 0 && total.archived_returns > 0, "{total:?}");
    assert!(total.archived_items > 0, "no envelope item was read back from the archive: {total:?}");
    assert!(total.restarts_from_snapshot > 0, "no restart started from a snapshot: {total:?}");
    assert!(total.keys_registered > 0 && total.key_payments_reserved > 0, "{total:?}");
    assert!(total.items_paid > 0 && total.items_flagged > 0, "{total:?}");
    assert!(total.claims_completed > 0 && total.claims_lapsed > 0, "{total:?}");
}
