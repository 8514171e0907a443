//! Engine tests: no tokio, no sockets, no disk. They prove the lifecycle
//! rules one by one, then (property tests) that under any interleaving of
//! commands positions net to zero, no payer exceeds its limit, no id settles
//! twice, returns never exceed their original, and replaying the journal
//! rebuilds exactly the same ledger.

use super::*;
use crate::op::{self, *};
use ponte_directory::keys::Key;
use ponte_domain::Account;
use ponte_domain::IdKind;
use ponte_domain::ReasonCode;
use std::collections::HashMap;

use ponte_domain::AccountType;
use proptest::prelude::*;

const T0: TimestampMs = 1_795_730_100_000; // 2026-11-26 21:55 UTC

fn pid(code: u32) -> ParticipantId {
    ParticipantId::new(code).unwrap()
}

fn account(code: u32, number: &str) -> Account {
    Account::new(pid(code), "1", number, AccountType::Checking).unwrap()
}

fn id(payer: u32, n: u64) -> EndToEndId {
    let suffix = format!("{n:011}");
    EndToEndId::from_parts(IdKind::Payment, pid(payer), T0, suffix.as_bytes().try_into().unwrap())
}

fn id_at(payer: u32, n: u64, at: TimestampMs) -> EndToEndId {
    let suffix = format!("{n:011}");
    EndToEndId::from_parts(IdKind::Payment, pid(payer), at, suffix.as_bytes().try_into().unwrap())
}

fn return_id(returner: u32, n: u64) -> EndToEndId {
    let suffix = format!("{n:011}");
    EndToEndId::from_parts(IdKind::Return, pid(returner), T0, suffix.as_bytes().try_into().unwrap())
}

struct Harness {
    engine: Engine,
    journal: Vec<Vec<u8>>,
    finals: Vec<(EndToEndId, Outcome)>,
    effects: Vec<Effect>,
}

impl Harness {
    fn new(caps: &[(u32, i64)]) -> Harness {
        Harness::with_config(EngineConfig::default(), caps)
    }

    fn with_config(config: EngineConfig, caps: &[(u32, i64)]) -> Harness {
        let mut h =
            Harness { engine: Engine::new(config), journal: Vec::new(), finals: Vec::new(), effects: Vec::new() };
        for &(code, cap) in caps {
            let reply = h.run(
                T0,
                op::RegisterParticipant {
                    id: pid(code),
                    name: format!("Bank {code}"),
                    net_debit_cap: Amount::units(cap),
                },
            );
            assert!(reply.is_ok());
            h.run(T0, op::InboxOpened(pid(code)));
        }
        h
    }

    fn run<O: Operation>(&mut self, now: TimestampMs, operation: O) -> O::Result {
        let mut out = Output::default();
        let reply = self.engine.execute(now, operation, &mut out);
        self.absorb(out);
        reply
    }

    fn expire(&mut self, now: TimestampMs) {
        let mut out = Output::default();
        self.engine.expire(now, &mut out);
        self.absorb(out);
    }

    fn absorb(&mut self, out: Output) {
        if !out.journal.is_empty() {
            self.journal.push(out.journal);
        }
        self.finals.extend(out.finals);
        self.effects.extend(out.effects);
    }

    fn pay(&mut self, now: TimestampMs, id: EndToEndId, payer: u32, payee: u32, minor: i64) -> Submitted {
        self.run(
            now,
            op::Submit(PaymentOrder {
                id,
                payer: account(payer, "111"),
                payee: account(payee, "222"),
                amount: Amount::from_minor(minor),
                remittance: "invoice 42".into(),
                payee_key: None,
                lookup_by: None,
            }),
        )
    }

    fn answer(&mut self, now: TimestampMs, payee: u32, id: EndToEndId, decision: Decision) {
        self.run(now, op::Answer { payee: pid(payee), id, decision });
    }

    fn position(&self, code: u32) -> i64 {
        self.engine.participant(pid(code)).unwrap().position.minor()
    }

    fn finals(&self, id: EndToEndId) -> Vec<Outcome> {
        self.finals.iter().filter(|(i, _)| *i == id).map(|(_, outcome)| *outcome).collect()
    }

    fn replayed(&self) -> Engine {
        let mut engine = Engine::new(self.engine.config().clone());
        replay_into(&mut engine, &self.journal);
        engine
    }

    /// The live engine, its full replay and its restored snapshot are the
    /// same state: their snapshots are the same bytes, and the restored one
    /// passes the invariants.
    fn assert_snapshots_agree(&self) {
        let records = self.journal.len() as u64;
        let live = self.engine.snapshot(records);
        assert_eq!(self.replayed().snapshot(records), live, "a replay differs from the live engine");
        let (restored, header) = Engine::restore(self.engine.config().clone(), &live).unwrap();
        assert_eq!(header.journal_records, records);
        assert_eq!(restored.snapshot(records), live, "a restored snapshot differs from the live engine");
    }
}

#[test]
fn an_engine_that_only_applies_records_keeps_no_deadline_of_a_final_payment() {
    let mut h = Harness::new(&[(1, 1_000_000), (2, 1_000_000)]);
    for n in 0..500 {
        assert!(matches!(h.pay(T0 + n as i64, id(1, n), 1, 2, 100), Submitted::Pending));
        h.answer(T0 + n as i64, 2, id(1, n), Decision::Accept);
    }
    // One still reserved: its deadline is live and stays.
    assert!(matches!(h.pay(T0 + 600, id(1, 999), 1, 2, 100), Submitted::Pending));
    // A follower applies records and never ticks (no expiry runs).
    let mut follower = Engine::new(h.engine.config().clone());
    let mut grew = 0;
    for record in &h.journal {
        for event in decode_events(record) {
            follower.apply(&event.unwrap());
        }
        grew = grew.max(follower.deadlines_queued());
        follower.drop_stale_deadlines();
    }
    assert_eq!(follower.deadlines_queued(), 1, "only the reserved payment's deadline is left");
    assert!(grew <= 2, "stale entries dropped record by record, not piled up: {grew}");
    follower.check_invariants().unwrap();
    // Without dropping them, one entry per payment ever reserved.
    assert_eq!(h.replayed().deadlines_queued(), 501);
}

fn replay_into(engine: &mut Engine, records: &[Vec<u8>]) {
    for record in records {
        engine.apply_record(record).unwrap();
    }
}

#[test]
fn accepted_payment_settles_and_moves_positions() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    let p = id(1, 1);
    assert!(matches!(h.pay(T0, p, 1, 2, 150_00), Submitted::Pending));
    assert_eq!(h.engine.participant(pid(1)).unwrap().reserved, Amount::from_minor(150_00));
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Deliver(d) if d.id == p && d.deadline == T0 + 5_000)));
    h.answer(T0 + 10, 2, p, Decision::Accept);
    assert_eq!(h.finals(p), [Outcome::Settled { at: T0 + 10 }]);
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Settled { payee, id, .. } if *payee == pid(2) && *id == p)));
    assert_eq!((h.position(1), h.position(2)), (-150_00, 150_00));
    assert_eq!(h.engine.participant(pid(1)).unwrap().reserved, Amount::ZERO);
    h.engine.check_invariants().unwrap();
}

#[test]
fn payee_reject_releases_the_reservation() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 500_00);
    h.answer(T0 + 1, 2, p, Decision::Reject(ReasonCode::ClosedAccount));
    assert_eq!(h.finals(p), [Outcome::Rejected { reason: ReasonCode::ClosedAccount }]);
    assert_eq!(h.engine.participant(pid(1)).unwrap().available(), Amount::units(1000));
    // A payee may not answer with a switch-only code: it becomes DS04.
    let q = id(1, 2);
    h.pay(T0, q, 1, 2, 1_00);
    h.answer(T0 + 1, 2, q, Decision::Reject(ReasonCode::InsufficientLiquidity));
    assert_eq!(h.finals(q), [Outcome::Rejected { reason: ReasonCode::RejectedByPayee }]);
    h.engine.check_invariants().unwrap();
}

#[test]
fn silence_times_out_at_the_deadline_and_late_answers_change_nothing() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 1_00);
    assert_eq!(h.engine.next_deadline(), Some(T0 + 5_000));
    h.expire(T0 + 4_999);
    assert!(h.finals(p).is_empty());
    h.expire(T0 + 5_000);
    assert_eq!(h.finals(p), [Outcome::Rejected { reason: ReasonCode::PayeeTimeout }]);
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Cancelled { id, .. } if *id == p)));
    h.answer(T0 + 6_000, 2, p, Decision::Accept);
    h.answer(T0 + 6_000, 2, p, Decision::Accept);
    assert_eq!(h.finals(p).len(), 1);
    assert_eq!(h.engine.answer_stats().late_or_duplicate, 2);
    assert_eq!((h.position(1), h.position(2)), (0, 0));
    assert_eq!(h.engine.next_deadline(), None);
}

#[test]
fn only_the_payee_can_answer() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 1_00);
    h.answer(T0, 3, p, Decision::Accept);
    h.answer(T0, 1, p, Decision::Accept);
    h.answer(T0, 2, id(1, 99), Decision::Accept);
    assert!(h.finals(p).is_empty());
    assert_eq!(h.engine.answer_stats().unknown, 3);
}

#[test]
fn duplicate_ids_return_the_original_outcome_or_their_own_code() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 10_00);
    assert!(
        matches!(h.pay(T0, p, 1, 2, 10_00), Submitted::Pending),
        "same content while pending waits for the same outcome"
    );
    h.answer(T0 + 5, 2, p, Decision::Accept);
    let journal_len = h.journal.len();
    assert!(matches!(h.pay(T0 + 9, p, 1, 2, 10_00), Submitted::Final(Outcome::Settled { at }) if at == T0 + 5));
    assert!(matches!(
        h.pay(T0 + 9, p, 1, 2, 11_00),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified })
    ));
    assert_eq!(h.journal.len(), journal_len, "resubmissions are not executed again");
    assert_eq!((h.position(1), h.position(2)), (-10_00, 10_00));
}

#[test]
fn liquidity_limit_is_never_exceeded() {
    let mut h = Harness::new(&[(1, 100), (2, 1000)]);
    assert!(matches!(h.pay(T0, id(1, 1), 1, 2, 60_00), Submitted::Pending));
    // 60 reserved: 40 left.
    assert!(matches!(
        h.pay(T0, id(1, 2), 1, 2, 40_01),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::InsufficientLiquidity })
    ));
    assert!(matches!(h.pay(T0, id(1, 3), 1, 2, 40_00), Submitted::Pending));
    h.answer(T0, 2, id(1, 1), Decision::Accept);
    h.answer(T0, 2, id(1, 3), Decision::Accept);
    assert_eq!(h.engine.participant(pid(1)).unwrap().available(), Amount::ZERO);
    // Receiving money restores headroom.
    assert!(matches!(h.pay(T0, id(2, 1), 2, 1, 30_00), Submitted::Pending));
    h.answer(T0, 1, id(2, 1), Decision::Accept);
    assert_eq!(h.engine.participant(pid(1)).unwrap().available(), Amount::units(30));
}

#[test]
fn switch_side_rejections() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
    let reject = |reply: Submitted| match reply {
        Submitted::Final(Outcome::Rejected { reason }) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(reject(h.pay(T0, id(1, 1), 1, 9, 1_00)), ReasonCode::UnknownPayeeParticipant);
    assert_eq!(reject(h.pay(T0, id(1, 2), 1, 1, 1_00)), ReasonCode::OnUsPayment, "a payment to oneself");
    h.run(T0, op::InboxClosed(pid(3)));
    assert_eq!(reject(h.pay(T0, id(1, 3), 1, 3, 1_00)), ReasonCode::PayeeOffline);
    assert_eq!(reject(h.pay(T0, id(1, 4), 1, 2, 1_000_000_000_01)), ReasonCode::AmountNotAllowed);
    assert_eq!(
        reject(h.pay(T0 + 6 * 60_000 + 24 * 3_600_000, id(1, 5), 1, 2, 1_00)),
        ReasonCode::IdTimestampOutOfRange
    );
    assert_eq!(reject(h.pay(T0 - 6 * 60_000, id(1, 6), 1, 2, 1_00)), ReasonCode::IdTimestampOutOfRange);
    h.run(T0, op::SetStatus { id: pid(1), status: ParticipantStatus::Suspended }).unwrap();
    assert_eq!(reject(h.pay(T0, id(1, 7), 1, 2, 1_00)), ReasonCode::PayerSuspended);
    h.run(T0, op::SetStatus { id: pid(2), status: ParticipantStatus::Suspended }).unwrap();
    assert_eq!(reject(h.pay(T0, id(3, 1), 3, 2, 1_00)), ReasonCode::UnknownPayeeParticipant);
    // Refusals are remembered: the same id gets the same answer.
    assert_eq!(reject(h.pay(T0, id(1, 3), 1, 3, 1_00)), ReasonCode::PayeeOffline);
    h.engine.check_invariants().unwrap();
}

#[test]
fn payee_inflight_is_bounded() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    h.engine.config.payee_inflight_max = 2;
    assert!(matches!(h.pay(T0, id(1, 1), 1, 2, 1), Submitted::Pending));
    assert!(matches!(h.pay(T0, id(1, 2), 1, 2, 1), Submitted::Pending));
    assert!(matches!(
        h.pay(T0, id(1, 3), 1, 2, 1),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::PayeeBusy })
    ));
    h.answer(T0, 2, id(1, 1), Decision::Accept);
    assert!(matches!(h.pay(T0, id(1, 4), 1, 2, 1), Submitted::Pending));
}

fn give_back(h: &mut Harness, now: TimestampMs, returner: u32, n: u64, original: EndToEndId, minor: i64) -> Submitted {
    h.run(
        now,
        op::Return(
            ReturnOrder {
                returner: pid(returner),
                id: return_id(returner, n),
                original,
                amount: Amount::from_minor(minor),
                reason: ReasonCode::RefundRequested,
                remittance: String::new(),
            },
            None,
        ),
    )
}

#[test]
fn returns_are_linked_capped_and_idempotent() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 100_00);
    h.answer(T0, 2, p, Decision::Accept);
    assert!(matches!(give_back(&mut h, T0 + 1, 2, 1, p, 60_00), Submitted::Final(Outcome::Settled { .. })));
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Returned(n) if n.to == pid(1) && n.original == p)));
    assert_eq!((h.position(1), h.position(2)), (-40_00, 40_00));
    assert!(matches!(
        give_back(&mut h, T0 + 2, 2, 2, p, 40_01),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::ReturnExceedsOriginal })
    ));
    assert!(matches!(give_back(&mut h, T0 + 3, 2, 3, p, 40_00), Submitted::Final(Outcome::Settled { .. })));
    assert_eq!(h.engine.transfer(&p).unwrap().returned, Amount::from_minor(100_00));
    // Same return id, same content: same answer, nothing moves again.
    assert!(
        matches!(give_back(&mut h, T0 + 4, 2, 3, p, 40_00), Submitted::Final(Outcome::Settled { at }) if at == T0 + 3)
    );
    assert_eq!((h.position(1), h.position(2)), (0, 0));
    // Only the original payee can return, and only a settled payment.
    assert!(matches!(
        give_back(&mut h, T0, 3, 1, p, 1),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::OriginalNotFound })
    ));
    let q = id(1, 2);
    h.pay(T0, q, 1, 2, 5_00);
    assert!(matches!(
        give_back(&mut h, T0, 2, 4, q, 1),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::OriginalNotFound })
    ));
    h.engine.check_invariants().unwrap();
}

#[test]
fn returns_close_after_the_window() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 1_00);
    h.answer(T0, 2, p, Decision::Accept);
    let late = T0 + h.engine.config().return_window_ms + 1;
    assert!(matches!(
        give_back(&mut h, late, 2, 1, p, 1),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::ReturnWindowExpired })
    ));
}

fn recall(
    h: &mut Harness,
    now: TimestampMs,
    requester: u32,
    original: EndToEndId,
    reason: ReasonCode,
) -> Result<Recall, RecallError> {
    let order = RecallOrder { requester: pid(requester), original, reason, text: "sent twice".into() };
    h.run(now, op::RequestRecall(order, None))
}

fn recall_effects(h: &Harness, original: EndToEndId) -> Vec<(ParticipantId, RecallState)> {
    h.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Recall(r) if r.original == original => Some((e.participant(), r.state)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_recall_is_the_payers_to_make_once_and_a_return_accepts_it() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 100_00);
    // Not settled yet: nothing to recall.
    assert_eq!(recall(&mut h, T0, 1, p, ReasonCode::DuplicatePayment), Err(RecallError::OriginalNotFound(p)));
    h.answer(T0, 2, p, Decision::Accept);
    assert!(matches!(give_back(&mut h, T0 + 1, 2, 1, p, 30_00), Submitted::Final(Outcome::Settled { .. })));
    // Only the payer's participant may recall it; the payee's and a third learn nothing.
    assert_eq!(recall(&mut h, T0 + 2, 2, p, ReasonCode::DuplicatePayment), Err(RecallError::OriginalNotFound(p)));
    assert_eq!(recall(&mut h, T0 + 2, 3, p, ReasonCode::DuplicatePayment), Err(RecallError::OriginalNotFound(p)));
    let opened = recall(&mut h, T0 + 2, 1, p, ReasonCode::DuplicatePayment).unwrap();
    assert_eq!(opened.amount, Amount::from_minor(70_00), "what is left of the original");
    assert_eq!((opened.requester, opened.responder, opened.state), (pid(1), pid(2), RecallState::Open));
    assert_eq!(opened.answer_by, T0 + 2 + h.engine.config().recall_answer_ms);
    assert_eq!(recall_effects(&h, p), [(pid(2), RecallState::Open)], "the payee's participant is told");
    // The same recall again is the same recall; another one is refused.
    assert_eq!(recall(&mut h, T0 + 3, 1, p, ReasonCode::DuplicatePayment), Ok(opened.clone()));
    assert_eq!(recall(&mut h, T0 + 3, 1, p, ReasonCode::FraudulentOrigin), Err(RecallError::AlreadyRecalled(p)));
    // An inbox opening is reminded of it.
    h.run(T0 + 4, op::InboxOpened(pid(2)));
    assert_eq!(recall_effects(&h, p).len(), 2);
    h.run(T0 + 4, op::InboxOpened(pid(3)));
    assert_eq!(recall_effects(&h, p).len(), 2, "only its responder is reminded");
    // Returning the rest accepts it, and the requester is told.
    assert!(matches!(give_back(&mut h, T0 + 5, 2, 2, p, 70_00), Submitted::Final(Outcome::Settled { .. })));
    let accepted = RecallState::Accepted { return_id: return_id(2, 2), amount: Amount::from_minor(70_00) };
    assert_eq!(recall_effects(&h, p).last(), Some(&(pid(1), accepted)));
    assert_eq!(h.run(T0 + 6, op::GetRecall { caller: pid(1), original: p }).unwrap().state, accepted);
    assert!(h.run(T0 + 6, op::GetRecall { caller: pid(3), original: p }).is_none(), "only the two sides see it");
    let refuse = op::RefuseRecall { responder: pid(2), original: p, reason: ReasonCode::AgentDecision };
    assert_eq!(h.run(T0 + 6, refuse), Err(RecallError::Closed(p)));
    // A payment returned in full cannot be recalled.
    let q = id(1, 2);
    h.pay(T0, q, 1, 2, 5_00);
    h.answer(T0, 2, q, Decision::Accept);
    assert!(matches!(give_back(&mut h, T0 + 1, 2, 3, q, 5_00), Submitted::Final(Outcome::Settled { .. })));
    assert_eq!(recall(&mut h, T0 + 2, 1, q, ReasonCode::CustomerDecision), Err(RecallError::AlreadyReturned(q)));
    h.engine.check_invariants().unwrap();
    h.assert_snapshots_agree();
}

#[test]
fn a_recall_is_refused_by_its_responder_or_expires_and_is_forgotten_with_its_window() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    let (p, q) = (id(1, 1), id(1, 2));
    for original in [p, q] {
        h.pay(T0, original, 1, 2, 10_00);
        h.answer(T0, 2, original, Decision::Accept);
        recall(&mut h, T0 + 1, 1, original, ReasonCode::FraudulentOrigin).unwrap();
    }
    let refuse = |reason| op::RefuseRecall { responder: pid(2), original: p, reason };
    let wrong_side = op::RefuseRecall { responder: pid(1), original: p, reason: ReasonCode::LegalDecision };
    assert_eq!(h.run(T0 + 2, wrong_side), Err(RecallError::NoRecall(p)));
    let refused = h.run(T0 + 2, refuse(ReasonCode::LegalDecision)).unwrap();
    assert_eq!(refused.state, RecallState::Refused { reason: ReasonCode::LegalDecision });
    assert_eq!(refused.closed_at, Some(T0 + 2));
    assert_eq!(recall_effects(&h, p).last(), Some(&(pid(1), refused.state)), "the requester is told");
    assert_eq!(h.run(T0 + 3, refuse(ReasonCode::LegalDecision)), Ok(refused.clone()), "a retry is the same answer");
    assert_eq!(h.run(T0 + 3, refuse(ReasonCode::AgentDecision)), Err(RecallError::Closed(p)));
    // A return after a refusal is still a return; the recall stays refused.
    assert!(matches!(give_back(&mut h, T0 + 4, 2, 1, p, 1_00), Submitted::Final(Outcome::Settled { .. })));
    assert_eq!(h.engine.recall_for(pid(1), &p).unwrap().state, refused.state);
    // Unanswered past its deadline, q's recall expires.
    let deadline = T0 + 1 + h.engine.config().recall_answer_ms;
    h.expire(deadline - 1);
    assert!(h.engine.recall_for(pid(1), &q).unwrap().is_open());
    h.expire(deadline);
    assert_eq!(h.engine.recall_for(pid(1), &q).unwrap().state, RecallState::Expired);
    assert_eq!(recall_effects(&h, q).last(), Some(&(pid(1), RecallState::Expired)));
    h.assert_snapshots_agree();
    // Past the return window both are forgotten, durably.
    let past = T0 + h.engine.config().return_window_ms + 1;
    h.expire(past);
    assert_eq!(h.engine.recall_count(), 0);
    assert_eq!(recall(&mut h, past, 1, q, ReasonCode::FraudulentOrigin), Err(RecallError::WindowExpired(q)));
    h.assert_snapshots_agree();
}

/// The archive as the driver keeps it: archived transfers and the late
/// returns added to them, in op order.
#[derive(Default)]
struct TestArchive {
    transfers: HashMap<EndToEndId, ArchivedTransfer>,
    late: HashMap<EndToEndId, Amount>,
    items: Vec<ItemView>,
    next: u64,
}

impl TestArchive {
    fn absorb(&mut self, ops: Vec<NumberedOp>) {
        for NumberedOp { number, op } in ops {
            assert_eq!(number, self.next, "archive ops are numbered without gaps");
            self.next += 1;
            match op {
                ArchiveOp::Transfer(archived) => {
                    self.transfers.insert(archived.transfer.id, *archived);
                }
                ArchiveOp::LateReturn { original, amount, .. } => {
                    let late = self.late.entry(original).or_insert(Amount::ZERO);
                    *late = late.checked_add(amount).unwrap();
                }
                ArchiveOp::EnvelopeItems(piece) => self.items.extend(piece.items),
            }
        }
    }

    fn returned(&self, id: &EndToEndId) -> Amount {
        let archived = &self.transfers[id].transfer;
        archived.returned.checked_add(self.late.get(id).copied().unwrap_or(Amount::ZERO)).unwrap()
    }
}

#[test]
fn past_the_duplicate_window_transfers_leave_memory_for_the_archive_and_returns_stay_capped() {
    let config = EngineConfig { id_age_ms_max: 60_000, id_future_skew_ms_max: 1_000, ..EngineConfig::default() };
    let mut h = Harness::with_config(config, &[(1, 1000), (2, 1000)]);
    h.engine.keep_archive_ops();
    let mut archive = TestArchive::default();
    let (p, q) = (id(1, 1), id(1, 2));
    h.pay(T0, p, 1, 2, 100_00);
    h.answer(T0, 2, p, Decision::Accept);
    h.pay(T0, q, 1, 2, 7_00);
    h.answer(T0, 2, q, Decision::Reject(ReasonCode::BlockedAccount));
    assert!(matches!(give_back(&mut h, T0 + 5, 2, 1, p, 10_00), Submitted::Final(Outcome::Settled { .. })));
    // Inside the window nothing leaves; a payment still in flight holds the rest back.
    h.expire(T0 + 30_000);
    assert_eq!(h.engine.evicted(), 0);
    let later = id_at(1, 4, T0 + 60_000);
    h.pay(T0 + 60_000, later, 1, 2, 1_00);
    h.expire(T0 + 62_000);
    assert_eq!(h.engine.evicted(), 3, "p, q and the return left; the later payment is in flight");
    archive.absorb(h.engine.take_archive_ops());
    assert_eq!(archive.transfers.len(), 3);
    assert_eq!(archive.returned(&p), Amount::from_minor(10_00));
    assert_eq!(archive.transfers[&return_id(2, 1)].original, Some(p));
    let Err(mark) = h.run(T0 + 62_000, op::Status { caller: pid(1), id: p }) else { panic!("p left memory") };
    assert_eq!(mark, NotHeld { ops: 3, head: 3 });
    assert_eq!(archive.transfers[&p].view_for(pid(1), Amount::ZERO).unwrap().returned, Amount::from_minor(10_00));
    assert!(archive.transfers[&p].view_for(pid(3), Amount::ZERO).is_none(), "only the two sides see it");
    // A resubmission of the archived id is refused for its age, never paid twice.
    assert!(matches!(
        h.pay(T0 + 62_000, p, 1, 2, 100_00),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::IdTimestampOutOfRange })
    ));
    // A return of the archived payment: asked for the original, then capped
    // across what was returned before and after archiving.
    let now = T0 + 63_000;
    assert!(matches!(give_back(&mut h, now, 2, 2, p, 50_00), Submitted::NotHeld(_)));
    let with = |h: &mut Harness, n: u64, minor: i64| {
        let order = ReturnOrder {
            returner: pid(2),
            id: return_id(2, n),
            original: p,
            amount: Amount::from_minor(minor),
            reason: ReasonCode::RefundRequested,
            remittance: String::new(),
        };
        h.run(now, op::Return(order, Some(Box::new(archive.transfers[&p].clone()))))
    };
    assert!(matches!(with(&mut h, 2, 50_00), Submitted::Final(Outcome::Settled { .. })));
    assert!(matches!(
        with(&mut h, 3, 40_01),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::ReturnExceedsOriginal })
    ));
    assert!(matches!(with(&mut h, 4, 40_00), Submitted::Final(Outcome::Settled { .. })));
    assert_eq!(h.engine.late_return_count(), 1);
    archive.absorb(h.engine.take_archive_ops());
    assert_eq!(archive.returned(&p), Amount::from_minor(100_00), "archive and memory agree on the total");
    assert_eq!((h.position(1), h.position(2)), (0, 0), "p came back whole");
    h.answer(now, 2, later, Decision::Accept);
    assert_eq!((h.position(1), h.position(2)), (-1_00, 1_00));
    h.engine.check_invariants().unwrap();
    h.assert_snapshots_agree();
    // Past the return window the late total is forgotten (the archive holds it).
    h.expire(T0 + h.engine.config().return_window_ms + 1);
    assert_eq!(h.engine.late_return_count(), 0);
    h.assert_snapshots_agree();
}

#[test]
fn a_final_transfer_keeps_only_a_window_entry_after_final_record_ms_and_it_answers_resubmissions() {
    let config = EngineConfig {
        final_record_ms: 1_000,
        id_age_ms_max: 60_000,
        id_future_skew_ms_max: 1_000,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config, &[(1, 1000), (2, 1000)]);
    h.engine.keep_archive_ops();
    let mut archive = TestArchive::default();
    let (p, q, r) = (id(1, 1), id(1, 2), id(1, 3));
    h.pay(T0, p, 1, 2, 100_00);
    h.answer(T0, 2, p, Decision::Accept);
    h.pay(T0, q, 1, 2, 7_00);
    h.answer(T0 + 10, 2, q, Decision::Reject(ReasonCode::BlockedAccount));
    h.pay(T0, r, 1, 2, 5_00);
    h.expire(T0 + 900);
    assert_eq!(h.engine.evicted(), 0, "final for less than final_record_ms");
    h.answer(T0 + 1_200, 2, r, Decision::Accept);
    h.expire(T0 + 1_500);
    assert_eq!(h.engine.evicted(), 2, "p and q went to the archive; r settled 300 ms ago");
    assert_eq!((h.engine.transfer_count(), h.engine.window_count()), (1, 3));
    archive.absorb(h.engine.take_archive_ops());
    assert_eq!(archive.transfers[&p].transfer.state, TransferState::Settled);
    let Err(mark) = h.run(T0 + 1_500, op::Status { caller: pid(1), id: p }) else { panic!("p's record left memory") };
    assert_eq!(mark, NotHeld { ops: 2, head: 2 });
    let positions = (h.position(1), h.position(2));
    // Resubmissions are answered from the window entries, exactly as the
    // first time, and nothing moves; a modified reuse of the id is refused.
    let check = |h: &mut Harness| {
        assert_eq!(h.pay(T0 + 1_600, p, 1, 2, 100_00), Submitted::Final(Outcome::Settled { at: T0 }));
        assert_eq!(
            h.pay(T0 + 1_600, q, 1, 2, 7_00),
            Submitted::Final(Outcome::Rejected { reason: ReasonCode::BlockedAccount })
        );
        assert_eq!(
            h.pay(T0 + 1_600, p, 1, 2, 100_01),
            Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified })
        );
        assert_eq!(
            h.pay(T0 + 1_600, r, 1, 2, 5_01),
            Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified })
        );
    };
    check(&mut h);
    assert_eq!((h.position(1), h.position(2)), positions);
    let late = h.engine.answer_stats().late_or_duplicate;
    h.answer(T0 + 1_600, 2, p, Decision::Accept);
    assert_eq!(h.engine.answer_stats().late_or_duplicate, late + 1, "a late answer to an archived payment");
    assert_eq!(h.engine.window_count(), 3, "nothing recorded by resubmissions");
    h.engine.check_invariants().unwrap();
    h.assert_snapshots_agree();
    // The same answers from an engine restored from a snapshot.
    let snapshot = h.engine.snapshot(h.journal.len() as u64);
    let mut reused = b"an earlier snapshot's bytes".to_vec();
    h.engine.snapshot_into(h.journal.len() as u64, &mut reused);
    assert_eq!(reused, snapshot, "a reused buffer holds exactly the snapshot");
    h.engine = Engine::restore(h.engine.config().clone(), &snapshot).unwrap().0;
    h.engine.keep_archive_ops();
    check(&mut h);
    // Once the ids leave the duplicate window their entries are forgotten
    // and a resubmission is refused for its age.
    h.expire(T0 + 61_000);
    assert_eq!((h.engine.transfer_count(), h.engine.window_count()), (0, 0));
    assert_eq!(
        h.pay(T0 + 61_000, p, 1, 2, 100_00),
        Submitted::Final(Outcome::Rejected { reason: ReasonCode::IdTimestampOutOfRange })
    );
    h.assert_snapshots_agree();
}

#[test]
fn status_is_visible_only_to_the_two_sides() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
    let p = id(1, 1);
    h.pay(T0, p, 1, 2, 1_00);
    for (caller, visible) in [(1, true), (2, true), (3, false)] {
        let view = h.run(T0, op::Status { caller: pid(caller), id: p });
        assert_eq!(view.expect("in memory").is_some(), visible);
    }
}

#[test]
fn administration() {
    let mut h = Harness::new(&[(1, 1000)]);
    let again =
        h.run(T0, op::RegisterParticipant { id: pid(1), name: "Bank 1".into(), net_debit_cap: Amount::units(1000) });
    assert!(again.is_ok(), "identical registration is idempotent");
    let clash =
        h.run(T0, op::RegisterParticipant { id: pid(1), name: "Other".into(), net_debit_cap: Amount::units(1) });
    assert!(matches!(clash, Err(AdminError::AlreadyRegistered(_))));
    let unknown = h.run(T0, op::SetLimit { id: pid(7), net_debit_cap: Amount::ZERO });
    assert!(matches!(unknown, Err(AdminError::UnknownParticipant(_))));
    let bad = h.run(T0, op::RegisterParticipant { id: pid(2), name: " ".into(), net_debit_cap: Amount::ZERO });
    assert!(matches!(bad, Err(AdminError::InvalidName)));
    let Ok(view) = h.run(T0, op::SetLimit { id: pid(1), net_debit_cap: Amount::units(5) }) else { panic!() };
    assert_eq!(view.available, Amount::units(5));
}

#[test]
fn replay_rebuilds_the_same_ledger() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    for n in 0..50 {
        h.pay(T0, id(1, n), 1, 2, 1_00 + n as i64);
        match n % 3 {
            0 => h.answer(T0, 2, id(1, n), Decision::Accept),
            1 => h.answer(T0, 2, id(1, n), Decision::Reject(ReasonCode::InvalidCreditorAccount)),
            _ => {}
        }
    }
    give_back(&mut h, T0, 2, 1, id(1, 0), 50);
    let mut rebuilt = h.replayed();
    rebuilt.check_invariants().unwrap();
    for code in [1, 2] {
        let (a, b) = (h.engine.participant(pid(code)).unwrap(), rebuilt.participant(pid(code)).unwrap());
        assert_eq!((a.position, a.reserved, a.inflight_in), (b.position, b.reserved, b.inflight_in));
    }
    assert_eq!(rebuilt.transfer_count(), h.engine.transfer_count());
    assert_eq!(rebuilt.next_deadline(), h.engine.next_deadline());
    h.assert_snapshots_agree();
}

#[test]
fn a_snapshot_plus_the_journal_after_it_is_the_live_engine() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    for n in 0..20 {
        h.pay(T0, id(1, n), 1, 2, 1_00 + n as i64);
    }
    let cut = h.journal.len();
    let snapshot = h.engine.snapshot(cut as u64);
    for n in 0..20 {
        if n % 2 == 0 {
            h.answer(T0 + 10, 2, id(1, n), Decision::Accept);
        }
    }
    give_back(&mut h, T0 + 20, 2, 1, id(1, 0), 50);
    h.expire(T0 + 60_000);
    let (mut restored, header) = Engine::restore(h.engine.config().clone(), &snapshot).unwrap();
    assert_eq!(header.journal_records, cut as u64);
    // Restored mid-flight: ten payments still reserved, their deadlines queued.
    assert_eq!(restored.participant(pid(1)).unwrap().reserved, Amount::from_minor(20 * 1_00 + 190));
    replay_into(&mut restored, &h.journal[cut..]);
    let records = h.journal.len() as u64;
    assert_eq!(restored.snapshot(records), h.engine.snapshot(records));
}

#[test]
fn a_torn_damaged_or_foreign_snapshot_is_refused_never_half_read() {
    let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
    for n in 0..30 {
        h.pay(T0, id(1, n), 1, 2, 1_00 + n as i64);
        if n % 2 == 0 {
            h.answer(T0, 2, id(1, n), Decision::Accept);
        }
    }
    let good = h.engine.snapshot(h.journal.len() as u64);
    let config = h.engine.config().clone();
    let refuse = |bytes: &[u8]| Engine::restore(config.clone(), bytes).map(|_| ()).unwrap_err();
    assert_eq!(refuse(&good[..good.len() - 1]), snapshot::SnapshotError::Checksum);
    assert_eq!(refuse(&good[..10]), snapshot::SnapshotError::NotASnapshot);
    for at in (20..good.len()).step_by(7) {
        let mut damaged = good.clone();
        damaged[at] ^= 0x40;
        assert_eq!(refuse(&damaged), snapshot::SnapshotError::Checksum, "byte {at} flipped");
    }
    for len in (36..good.len()).step_by(11) {
        assert_eq!(refuse(&good[..len]), snapshot::SnapshotError::Checksum, "torn at {len} bytes");
    }
    let mut foreign = good.clone();
    foreign[0] = b'X';
    assert_eq!(refuse(&foreign), snapshot::SnapshotError::NotASnapshot);
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&(snapshot::SNAPSHOT_FORMAT + 1).to_le_bytes());
    assert_eq!(refuse(&newer), snapshot::SnapshotError::Format { found: snapshot::SNAPSHOT_FORMAT + 1 });
    // Whole and checksummed, yet not what a snapshot can be: refused too.
    let resealed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good[..good.len() - 16].to_vec();
        edit(&mut bytes);
        let checksum = xxhash_rust::xxh3::xxh3_128(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    };
    let past_the_end = resealed(&|b| b[20..28].copy_from_slice(&u64::MAX.to_le_bytes()));
    assert!(matches!(refuse(&past_the_end), snapshot::SnapshotError::Body(m) if m.contains("runs past the file")));
    let extra_entry = resealed(&|b| b.extend_from_slice(&[0; 40]));
    assert!(matches!(refuse(&extra_entry), snapshot::SnapshotError::Body(m) if m.contains("do not fill")));
}

/// One step of a random workload.
#[derive(Debug, Clone)]
enum Op {
    Pay { payer: u32, payee: u32, minor: i64, n: u64 },
    Resubmit { pick: usize, modified: bool },
    Answer { pick: usize, accept: bool, by_other: bool },
    Return { pick: usize, minor: i64, n: u64 },
    Advance { ms: i64 },
    Inbox { code: u32, open: bool },
    Recall { pick: usize, refuse: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=4_u32, 1..=4_u32, 1..=60_000_i64, any::<u64>()).prop_map(|(payer, payee, minor, n)| Op::Pay { payer, payee, minor, n }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, modified)| Op::Resubmit { pick, modified }),
        4 => (any::<usize>(), any::<bool>(), prop::bool::weighted(0.1)).prop_map(|(pick, accept, by_other)| Op::Answer { pick, accept, by_other }),
        1 => (any::<usize>(), 1..=30_000_i64, any::<u64>()).prop_map(|(pick, minor, n)| Op::Return { pick, minor, n }),
        1 => (0..3_000_i64).prop_map(|ms| Op::Advance { ms }),
        1 => (1..=4_u32, any::<bool>()).prop_map(|(code, open)| Op::Inbox { code, open }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, refuse)| Op::Recall { pick, refuse }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Under any interleaving: positions net to zero, no payer ever holds
    /// more than its cap, each id gets exactly one final outcome, returns stay
    /// within their original, and a replay rebuilds the same ledger.
    #[test]
    fn ledger_invariants_hold_under_random_workloads(ops in prop::collection::vec(op(), 1..300)) {
        let caps = [(1, 1_000), (2, 500), (3, 2_000), (4, 100)];
        let mut h = Harness::new(&caps);
        let mut now = T0;
        let mut sent: Vec<(EndToEndId, u32, u32, i64)> = Vec::new();
        let mut open: HashMap<u32, u32> = caps.iter().map(|&(c, _)| (c, 1)).collect();
        let halfway = ops.len() / 2;
        let mut midway = None;
        for (step, op) in ops.into_iter().enumerate() {
            if step == halfway {
                midway = Some((h.journal.len(), h.engine.snapshot(h.journal.len() as u64)));
            }
            match op {
                Op::Pay { payer, payee, minor, n } => {
                    let i = id(payer, n % 100_000_000_000);
                    if h.engine.transfer(&i).is_none() {
                        h.pay(now, i, payer, payee, minor);
                        sent.push((i, payer, payee, minor));
                    }
                }
                Op::Resubmit { pick, modified } if !sent.is_empty() => {
                    let (i, payer, payee, minor) = sent[pick % sent.len()];
                    let reply = h.pay(now, i, payer, payee, minor + i64::from(modified));
                    if modified {
                        let modified_rejected = matches!(reply, Submitted::Final(Outcome::Rejected { reason: ReasonCode::DuplicateModified }));
                        prop_assert!(modified_rejected);
                    }
                }
                Op::Answer { pick, accept, by_other } if !sent.is_empty() => {
                    let (i, _, payee, _) = sent[pick % sent.len()];
                    let who = if by_other { payee % 4 + 1 } else { payee };
                    let decision = if accept { Decision::Accept } else { Decision::Reject(ReasonCode::BlockedAccount) };
                    h.answer(now, who, i, decision);
                }
                Op::Return { pick, minor, n } if !sent.is_empty() => {
                    let (i, _, payee, _) = sent[pick % sent.len()];
                    let rid = return_id(payee, n % 100_000_000_000);
                    if h.engine.transfer(&rid).is_none() {
                        give_back(&mut h, now, payee, n % 100_000_000_000, i, minor);
                    }
                }
                Op::Recall { pick, refuse } if !sent.is_empty() => {
                    let (i, payer, payee, _) = sent[pick % sent.len()];
                    if refuse {
                        let refused = op::RefuseRecall { responder: pid(payee), original: i, reason: ReasonCode::AgentDecision };
                        let _ = h.run(now, refused);
                    } else if let Ok(recall) = recall(&mut h, now, payer, i, ReasonCode::TechnicalProblem) {
                        let t = h.engine.transfer(&i).unwrap();
                        prop_assert!(recall.amount <= t.amount, "a recall asks at most the original");
                    }
                }
                Op::Advance { ms } => {
                    now += ms;
                    h.expire(now);
                }
                Op::Inbox { code, open: opening } => {
                    let count = open.entry(code).or_default();
                    if opening {
                        *count += 1;
                        h.run(now, op::InboxOpened(pid(code)));
                    } else if *count > 0 {
                        *count -= 1;
                        h.run(now, op::InboxClosed(pid(code)));
                    }
                }
                _ => {}
            }
            prop_assert_eq!(h.engine.check_invariants(), Ok(()));
            for &(code, cap) in &caps {
                let p = h.engine.participant(pid(code)).unwrap();
                let exposure = p.reserved.minor() - p.position.minor();
                prop_assert!(exposure <= cap * 100, "participant {} exposure {} over cap {}", code, exposure, cap);
            }
        }
        // Each payment got at most one final outcome, and a reserved one none yet.
        for &(i, ..) in &sent {
            let finals = h.finals(i).len();
            let state = h.engine.transfer(&i).unwrap().state;
            let refused_at_once = h.engine.transfer(&i).unwrap().reason.is_some() && finals == 0;
            prop_assert!(finals <= 1, "{} finals for {}", finals, i);
            prop_assert_eq!(state.is_final(), finals == 1 || refused_at_once);
        }
        let rebuilt = h.replayed();
        prop_assert_eq!(rebuilt.check_invariants(), Ok(()));
        // A snapshot taken halfway, plus the journal after it, is the live engine.
        let (cut, snapshot) = midway.expect("at least one step");
        let (mut restored, _) = Engine::restore(h.engine.config().clone(), &snapshot).unwrap();
        replay_into(&mut restored, &h.journal[cut..]);
        let records = h.journal.len() as u64;
        prop_assert!(restored.snapshot(records) == h.engine.snapshot(records), "snapshot + tail differs from the live engine");
        prop_assert!(rebuilt.snapshot(records) == h.engine.snapshot(records), "replay differs from the live engine");
        for &(code, _) in &caps {
            let (a, b) = (h.engine.participant(pid(code)).unwrap(), rebuilt.participant(pid(code)).unwrap());
            prop_assert_eq!((a.position, a.reserved), (b.position, b.reserved));
        }
        // Independent recomputation of positions from the transfer list.
        let mut expected: HashMap<u32, i64> = HashMap::new();
        for (_, t) in h.engine.transfers.values() {
            if t.state == TransferState::Settled {
                *expected.entry(t.payer.participant.code()).or_default() -= t.amount.minor();
                *expected.entry(t.payee.participant.code()).or_default() += t.amount.minor();
            }
        }
        for &(code, _) in &caps {
            prop_assert_eq!(h.position(code), expected.get(&code).copied().unwrap_or(0));
        }
    }
}

mod directory {
    //! The directory inside the engine: keys resolve payments, changes are
    //! journaled and replayed, claims lapse on the engine's clock, lookups
    //! are rate limited.
    use super::*;
    use ponte_directory::claims::{ClaimAction, ClaimKind, ClaimStatus};
    use ponte_directory::keys::{Brazil, KeyType, parse};
    use ponte_directory::registry::{NewKey, Owner, OwnerKind};

    fn maria() -> Owner {
        Owner { kind: OwnerKind::Person, id: "52998224725".into(), name: "Maria Souza".into() }
    }

    fn phone() -> Key {
        parse(&Brazil, KeyType::Phone, "+5561988880000").unwrap()
    }

    fn register(h: &mut Harness, holder: u32, number: &str) {
        let reply = h.run(
            T0,
            op::RegisterKey {
                caller: pid(holder),
                key: NewKey::Chosen { kind: KeyType::Phone, value: "+5561988880000".into() },
                account: account(holder, number),
                owner: maria(),
            },
        );
        assert!(reply.is_ok(), "{reply:?}");
    }

    fn pay_key(h: &mut Harness, id: EndToEndId, payer: u32, key: Key) -> Submitted {
        h.run(
            T0,
            op::Submit(PaymentOrder {
                id,
                payer: account(payer, "111"),
                payee: Account::unresolved(),
                payee_key: Some(key),
                lookup_by: None,
                amount: Amount::from_minor(10_00),
                remittance: String::new(),
            }),
        )
    }

    #[test]
    fn payments_to_a_key_reach_the_account_behind_it() {
        let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
        register(&mut h, 2, "4242");
        let p = id(1, 1);
        assert!(matches!(pay_key(&mut h, p, 1, phone()), Submitted::Pending));
        assert!(h.effects.iter().any(|e| matches!(e, Effect::Deliver(d) if d.payee == account(2, "4242"))));
        h.answer(T0, 2, p, Decision::Accept);
        assert_eq!(h.position(2), 10_00);
        let unknown = parse(&Brazil, KeyType::Email, "nobody@example.com").unwrap();
        assert!(matches!(
            pay_key(&mut h, id(1, 2), 1, unknown),
            Submitted::Final(Outcome::Rejected { reason: ReasonCode::UnknownKey })
        ));
        h.engine.check_invariants().unwrap();
    }

    #[test]
    fn directory_changes_replay() {
        let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
        register(&mut h, 2, "4242");
        h.run(T0, op::MoveKey { caller: pid(2), key: phone(), account: account(2, "5555") }).unwrap();
        let random = h.run(
            T0,
            op::RegisterKey { caller: pid(3), key: NewKey::Random([9; 16]), account: account(3, "1"), owner: maria() },
        );
        let Ok(random) = random else { panic!() };
        h.run(T0, op::DeleteKey { caller: pid(3), key: random.key.clone() }).unwrap();
        let rebuilt = h.replayed();
        assert_eq!(rebuilt.directory().registry.get(&phone()).unwrap().account, account(2, "5555"));
        assert!(rebuilt.directory().registry.get(&random.key).is_none());
        assert_eq!(rebuilt.directory().registry.digest_of(pid(2)), h.engine.directory().registry.digest_of(pid(2)));
        h.assert_snapshots_agree();
    }

    #[test]
    fn claims_lapse_on_the_engine_clock_and_complete() {
        let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
        register(&mut h, 1, "10");
        let joao = Owner { kind: OwnerKind::Person, id: "11144477735".into(), name: "Joao Lima".into() };
        let Ok(claim) = h.run(
            T0,
            op::OpenClaim {
                caller: pid(2),
                kind: ClaimKind::Ownership,
                key: phone(),
                account: account(2, "20"),
                owner: joao,
            },
        ) else {
            panic!()
        };
        let window = h.engine.config().claim_window_ms;
        h.expire(T0 + window - 1);
        let claims = h.run(T0, op::ListClaims { caller: pid(1), after: None, limit: usize::MAX });
        assert_eq!(claims[0].status, ClaimStatus::Open);
        h.expire(T0 + window);
        let claims = h.run(T0, op::ListClaims { caller: pid(2), after: None, limit: usize::MAX });
        assert_eq!(claims[0].status, ClaimStatus::Confirmed);
        let done = h.run(T0 + window, op::ActOnClaim { caller: pid(2), id: claim.id, action: ClaimAction::Complete });
        assert!(matches!(done, Ok(ref c) if c.status == ClaimStatus::Completed));
        assert_eq!(h.engine.directory().registry.get(&phone()).unwrap().account, account(2, "20"));
        let rebuilt = h.replayed();
        assert_eq!(rebuilt.directory().registry.get(&phone()).unwrap().account, account(2, "20"));
        assert_eq!(rebuilt.directory().claims.get(claim.id).unwrap().status, ClaimStatus::Completed);
        h.assert_snapshots_agree();
    }

    #[test]
    fn closed_claims_are_forgotten_past_the_retention_and_open_ones_kept() {
        let mut h = Harness::new(&[(1, 1000), (2, 1000), (3, 1000)]);
        register(&mut h, 1, "10");
        let joao = Owner { kind: OwnerKind::Person, id: "11144477735".into(), name: "Joao Lima".into() };
        let open = |h: &mut Harness, caller: u32, at: TimestampMs| {
            let claim = op::OpenClaim {
                caller: pid(caller),
                kind: ClaimKind::Ownership,
                key: phone(),
                account: account(caller, "20"),
                owner: joao.clone(),
            };
            h.run(at, claim).unwrap()
        };
        let first = open(&mut h, 2, T0);
        let closed = h.run(T0 + 1_000, op::ActOnClaim { caller: pid(2), id: first.id, action: ClaimAction::Cancel });
        assert!(matches!(closed, Ok(ref c) if c.status == ClaimStatus::Cancelled), "{closed:?}");
        let retention = h.engine.config().retention_ms();
        // A later claim on the same key, still open when the first is forgotten.
        let second = open(&mut h, 3, T0 + retention);
        h.expire(T0 + 1_000 + retention - 1);
        assert!(h.engine.directory().claims.get(first.id).is_some(), "kept for the whole retention");
        // Looked for at most once a minute.
        h.expire(T0 + 1_000 + retention + 60_000);
        assert!(h.engine.directory().claims.get(first.id).is_none(), "forgotten within a minute past the retention");
        assert!(h.engine.directory().claims.get(second.id).is_some(), "an open claim is never forgotten");
        let acted = h
            .run(T0 + retention + 62_000, op::ActOnClaim { caller: pid(2), id: first.id, action: ClaimAction::Cancel });
        assert!(acted.is_err(), "a forgotten claim is unknown: {acted:?}");
        assert_eq!(h.run(T0, op::ListClaims { caller: pid(2), after: None, limit: usize::MAX }).len(), 0);
        let rebuilt = h.replayed();
        assert!(rebuilt.directory().claims.get(first.id).is_none());
        assert!(rebuilt.directory().claims.get(second.id).is_some());
        h.assert_snapshots_agree();
    }

    #[test]
    fn lookups_are_rate_limited_per_end_user() {
        let mut h = Harness::new(&[(1, 1000), (2, 1000)]);
        register(&mut h, 2, "4242");
        let payer = EndUser { kind: OwnerKind::Person, id: "11144477735".into() };
        let missing = parse(&Brazil, KeyType::Email, "nobody@example.com").unwrap();
        // Five misses (20 tokens each) empty a person's bucket of 100.
        for _ in 0..5 {
            let r = h.run(T0, op::LookupKey { caller: pid(1), end_user: payer.clone(), key: missing.clone() });
            assert!(matches!(r, Err(LookupError::NotFound)), "{r:?}");
        }
        let r = h.run(T0, op::LookupKey { caller: pid(1), end_user: payer.clone(), key: phone() });
        assert!(matches!(r, Err(LookupError::UserLimited { retry_after_ms: 30_000 })), "{r:?}");
        // Another end user is not affected; the view masks the owner.
        let other = EndUser { kind: OwnerKind::Person, id: "52998224725".into() };
        let r = h.run(T0, op::LookupKey { caller: pid(1), end_user: other, key: phone() });
        let Ok(view) = r else { panic!("{r:?}") };
        assert_eq!((view.account, view.owner_name_masked.as_str()), (account(2, "4242"), "Maria S."));
        // A payment after a lookup gives the user's token back.
        let p = PaymentOrder {
            id: id(1, 7),
            payer: account(1, "111"),
            payee: Account::unresolved(),
            payee_key: Some(phone()),
            lookup_by: Some(payer.clone()),
            amount: Amount::from_minor(1_00),
            remittance: String::new(),
        };
        h.run(T0, op::Submit(p));
        let r = h.run(T0, op::LookupKey { caller: pid(1), end_user: payer, key: phone() });
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn the_reserved_participant_code_cannot_be_registered() {
        let mut h = Harness::new(&[]);
        let r = h.run(T0, op::RegisterParticipant { id: pid(0), name: "x".into(), net_debit_cap: Amount::ZERO });
        assert!(matches!(r, Err(AdminError::ReservedCode)));
    }
}

mod cycles {
    //! Settlement cycles: each movement in exactly one cycle, reports that
    //! net to zero, confirmation returns headroom, replay keeps it all.
    use super::*;
    use crate::Liquidity;
    use ponte_settlement::report::CycleStatus;

    fn settle(h: &mut Harness, now: TimestampMs, n: u64, payer: u32, payee: u32, minor: i64) {
        assert!(matches!(h.pay(now, id(payer, n), payer, payee, minor), Submitted::Pending));
        h.answer(now, payee, id(payer, n), Decision::Accept);
    }

    #[test]
    fn closing_is_a_cut_and_confirming_frees_headroom() {
        let mut h = Harness::new(&[(1, 100), (2, 100)]);
        h.expire(T0);
        settle(&mut h, T0, 1, 1, 2, 60_00);
        let closed = h.run(T0 + 10, op::CloseCycle);
        assert_eq!((closed.id, closed.status), (1, CycleStatus::Closed));
        settle(&mut h, T0 + 20, 2, 1, 2, 40_00);
        // 100 of headroom used across two cycles: nothing more can go.
        assert!(matches!(
            h.pay(T0, id(1, 3), 1, 2, 1),
            Submitted::Final(Outcome::Rejected { reason: ReasonCode::InsufficientLiquidity })
        ));
        let mut report = |id| {
            let Ok((header, movements, None)) = h.run(T0, op::CycleMovements { id }) else { panic!() };
            ponte_settlement::report::build(header, movements).unwrap()
        };
        let (one, two) = (report(1), report(2));
        assert_eq!((one.netting.movements, two.netting.movements), (1, 1));
        assert_eq!(one.netting.totals[0].net_position, Amount::from_minor(-60_00));
        assert!(matches!(h.run(T0, op::ConfirmCycle { id: 2 }), Err(CycleError::NotClosed(2, "OPEN"))));
        let Ok(settled) = h.run(T0 + 30, op::ConfirmCycle { id: 1 }) else { panic!() };
        assert_eq!(settled.status, CycleStatus::Settled);
        // Cycle 1's 60.00 left the unsettled position: 60.00 of headroom is back.
        assert_eq!(h.engine.participant(pid(1)).unwrap().available(), Amount::units(60));
        h.engine.check_invariants().unwrap();
        let rebuilt = h.replayed();
        rebuilt.check_invariants().unwrap();
        assert_eq!(rebuilt.cycle_report(1).unwrap(), one.clone_with_status(CycleStatus::Settled, Some(T0 + 30)));
        assert_eq!(rebuilt.open_cycle(), 2);
        h.assert_snapshots_agree();
    }

    /// A cycle's movements are found in its span of the transfer slab: a
    /// payment recorded before others but settled after a close belongs
    /// to the later cycle, and a return is recorded where it settles.
    #[test]
    fn a_cycle_finds_its_movements_however_they_interleave_in_arrival_order() {
        let mut h = Harness::new(&[(1, 100_000), (2, 100_000), (3, 100_000)]);
        h.expire(T0);
        // Recorded first, answered last.
        assert!(matches!(h.pay(T0, id(1, 1), 1, 2, 10_00), Submitted::Pending));
        settle(&mut h, T0, 2, 2, 3, 20_00);
        settle(&mut h, T0, 3, 3, 1, 30_00);
        h.run(T0 + 1, op::CloseCycle);
        settle(&mut h, T0 + 2, 4, 1, 3, 40_00);
        h.answer(T0 + 3, 2, id(1, 1), Decision::Accept);
        assert!(matches!(give_back(&mut h, T0 + 4, 1, 5, id(3, 3), 5_00), Submitted::Final(Outcome::Settled { .. })));
        let ids = |h: &Harness, cycle| {
            let mut ids: Vec<EndToEndId> = h.engine.cycle_movements(cycle).into_iter().map(|(m, _)| m.id).collect();
            ids.sort();
            ids
        };
        let mut two = vec![id(1, 1), id(1, 4), return_id(1, 5)];
        two.sort();
        assert_eq!(ids(&h, 1), vec![id(2, 2), id(3, 3)]);
        assert_eq!(ids(&h, 2), two);
        let rebuilt = h.replayed();
        assert_eq!(rebuilt.cycle_movements(2).len(), 3, "the spans are rebuilt by replay");
        assert_eq!(rebuilt.cycle_report(2).unwrap(), h.engine.cycle_report(2).unwrap());
        h.assert_snapshots_agree();
    }

    #[test]
    fn prefunded_participants_send_what_they_hold() {
        let mut h = Harness::new(&[(1, 1_000), (2, 1_000)]);
        h.expire(T0);
        let Ok(view) = h.run(T0, op::SetLiquidity { id: pid(1), liquidity: Liquidity::Prefunded }) else { panic!() };
        assert_eq!(view.available, Amount::ZERO, "nothing deposited yet: the cap no longer counts");
        assert!(matches!(
            h.pay(T0, id(1, 1), 1, 2, 1),
            Submitted::Final(Outcome::Rejected { reason: ReasonCode::InsufficientLiquidity })
        ));
        assert!(matches!(
            h.run(T0, op::FundsIn { id: pid(2), amount: Amount::units(5) }),
            Err(AdminError::NotPrefunded)
        ));
        h.run(T0, op::FundsIn { id: pid(1), amount: Amount::units(50) }).unwrap();
        settle(&mut h, T0, 2, 1, 2, 30_00);
        assert_eq!(h.engine.participant(pid(1)).unwrap().available(), Amount::units(20));
        assert!(matches!(
            h.run(T0, op::FundsOut { id: pid(1), amount: Amount::units(21) }),
            Err(AdminError::InsufficientFunds { .. })
        ));
        // Settling the cycle moves the net into the balance: what it can send is unchanged.
        h.run(T0 + 1, op::CloseCycle);
        h.run(T0 + 2, op::ConfirmCycle { id: 1 }).unwrap();
        let p = h.engine.participant(pid(1)).unwrap();
        assert_eq!((p.balance, p.position, p.available()), (Amount::units(20), Amount::ZERO, Amount::units(20)));
        let Ok(view) = h.run(T0, op::FundsOut { id: pid(1), amount: Amount::units(20) }) else { panic!() };
        assert_eq!(view.available, Amount::ZERO);
        h.engine.check_invariants().unwrap();
        let rebuilt = h.replayed();
        assert_eq!(rebuilt.participant(pid(1)).unwrap().balance, Amount::ZERO);
        assert_eq!(rebuilt.participant(pid(1)).unwrap().liquidity, Liquidity::Prefunded);
    }

    #[test]
    fn cycles_close_on_schedule() {
        let mut h = Harness::new(&[(1, 100), (2, 100)]);
        h.engine.config.cycle_close_every_ms = 60_000;
        h.expire(T0);
        settle(&mut h, T0, 1, 1, 2, 1_00);
        h.expire(T0 + 59_999);
        assert_eq!(h.engine.open_cycle(), 1);
        h.expire(T0 + 60_000);
        assert_eq!(h.engine.open_cycle(), 2);
        h.expire(T0 + 60_001);
        assert_eq!(h.engine.open_cycle(), 2, "the new cycle has its own hour");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Random payments, returns and closes: every settled movement is in
        /// exactly one cycle report, each report nets to zero, and the reports
        /// together equal an independent recomputation from the transfers.
        #[test]
        fn every_movement_lands_in_exactly_one_cycle(steps in prop::collection::vec((1_u32..=3, 1_u32..=3, 1_i64..5_000, prop::bool::weighted(0.1), prop::bool::weighted(0.2)), 1..120)) {
            let mut h = Harness::new(&[(1, 100_000), (2, 100_000), (3, 100_000)]);
            h.expire(T0);
            let mut settled = Vec::new();
            for (n, (payer, payee, minor, close, give_back)) in steps.into_iter().enumerate() {
                if close {
                    h.run(T0, op::CloseCycle);
                }
                if payer == payee {
                    continue;
                }
                settle(&mut h, T0, n as u64, payer, payee, minor);
                settled.push((id(payer, n as u64), payer, payee, minor));
                if give_back {
                    let r = give_back_helper(&mut h, payee, n as u64, id(payer, n as u64), minor / 2 + 1);
                    let returned = matches!(r, Submitted::Final(Outcome::Settled { .. }));
                    prop_assert!(returned);
                }
            }
            let mut seen = std::collections::HashSet::new();
            let mut recomputed: HashMap<u32, i64> = HashMap::new();
            for cycle in 1..=h.engine.open_cycle() {
                let report = h.engine.cycle_report(cycle).unwrap();
                prop_assert_eq!(report.netting.totals.iter().map(|t| t.net_position.minor()).sum::<i64>(), 0);
                for (m, _) in h.engine.cycle_movements(cycle) {
                    prop_assert!(seen.insert(m.id), "{} in two cycles", m.id);
                    *recomputed.entry(m.movement.payer.code()).or_default() -= m.movement.amount.minor();
                    *recomputed.entry(m.movement.payee.code()).or_default() += m.movement.amount.minor();
                }
            }
            for (i, ..) in &settled {
                prop_assert!(seen.contains(i), "{} in no cycle", i);
            }
            for code in 1..=3 {
                prop_assert_eq!(h.position(code), recomputed.get(&code).copied().unwrap_or(0));
            }
            prop_assert_eq!(h.engine.check_invariants(), Ok(()));
        }
    }

    fn give_back_helper(h: &mut Harness, returner: u32, n: u64, original: EndToEndId, minor: i64) -> Submitted {
        give_back(h, T0, returner, n, original, minor)
    }
}

mod disbursement {
    //! Envelopes inside the engine: accepted whole against control totals,
    //! duplicates flagged DUPL, paid through the ordinary payment path at the
    //! pace the caller gives, every item exactly once across replays, and
    //! progress counters that always match the items.
    use super::*;
    use ponte_directory::keys::{Brazil, KeyType, parse};
    use ponte_directory::registry::{NewKey, Owner, OwnerKind};

    const AGENCY: u32 = 9;

    fn header(reference: &str, count: u32, total_minor: i64) -> EnvelopeHeader {
        EnvelopeHeader {
            agency: pid(AGENCY),
            reference: reference.into(),
            programme: "Bolsa Teste".into(),
            cycle_reference: "2026-12".into(),
            currency: "BRL".into(),
            paying_account: account(AGENCY, "1"),
            control_count: count,
            control_total: Amount::from_minor(total_minor),
        }
    }

    fn item(id: &str, beneficiary: Beneficiary, minor: i64) -> EnvelopeItem {
        EnvelopeItem {
            disbursement_id: id.into(),
            beneficiary,
            amount: Amount::from_minor(minor),
            narrative: "dez".into(),
        }
    }

    fn to_account(code: u32, number: &str) -> Beneficiary {
        Beneficiary::Account(account(code, number))
    }

    fn phone(text: &str) -> Beneficiary {
        Beneficiary::Key(parse(&Brazil, KeyType::Phone, text).unwrap())
    }

    /// Opens, fills and seals an envelope; returns the reply of the seal.
    fn submit(
        h: &mut Harness,
        header: EnvelopeHeader,
        items: Vec<EnvelopeItem>,
    ) -> Result<EnvelopeView, EnvelopeError> {
        let digest = items.len() as u128 * 7919 + header.control_total.minor() as u128;
        let opened = h.run(T0, op::OpenEnvelope { caller: pid(AGENCY), header, digest });
        let opened = opened?;
        if opened.sealed_at.is_some() {
            return Ok(opened); // sent before: its receipt
        }
        let number = opened.number;
        for chunk in items.chunks(2) {
            let command = op::AddEnvelopeItems { caller: pid(AGENCY), number, items: chunk.to_vec() };
            let added = h.run(T0, command);
            added?;
        }
        h.run(T0, op::SealEnvelope { caller: pid(AGENCY), number })
    }

    fn drive(h: &mut Harness, budget: usize) -> usize {
        let mut out = Output::default();
        let started = h.engine.drive_disbursements(T0 + 1, budget, 1_000, &mut out);
        h.absorb(out);
        started
    }

    /// Answers every delivery of `payee` still waiting, rejecting `reject` accounts.
    fn answer_all(h: &mut Harness, payee: u32, reject: &str) {
        let deliveries: Vec<(EndToEndId, Account)> = h
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver(d) if d.payee.participant == pid(payee) => Some((d.id, d.payee)),
                _ => None,
            })
            .collect();
        for (id, to) in deliveries {
            if h.engine.transfer(&id).is_some_and(|t| t.state == TransferState::Reserved) {
                let decision =
                    if to.number() == reject { Decision::Reject(ReasonCode::ClosedAccount) } else { Decision::Accept };
                h.answer(T0 + 2, payee, id, decision);
            }
        }
    }

    fn items_of(h: &mut Harness, reference: &str) -> Vec<ItemView> {
        let command = op::EnvelopeItems {
            caller: Some(pid(AGENCY)),
            agency: pid(AGENCY),
            reference: reference.into(),
            offset: 0,
            limit: 100,
        };
        let Ok(page) = h.engine.execute(T0, command, &mut Output::default()) else { panic!() };
        assert_eq!(page.archived, None, "nothing archived here");
        page.items
    }

    fn view(engine: &mut Engine, reference: &str) -> EnvelopeView {
        let command = op::GetEnvelope { caller: None, agency: pid(AGENCY), reference: reference.into() };
        let Ok(view) = engine.execute(T0, command, &mut Output::default()) else { panic!() };
        view
    }

    fn harness() -> Harness {
        let mut h = Harness::new(&[(AGENCY, 1_000_000), (2, 1000), (3, 1000)]);
        let owner = Owner { kind: OwnerKind::Person, id: "52998224725".into(), name: "Maria Souza".into() };
        let key = NewKey::Chosen { kind: KeyType::Phone, value: "+5561988880000".into() };
        let reply = h.run(T0, op::RegisterKey { caller: pid(3), key, account: account(3, "77"), owner });
        assert!(reply.is_ok());
        h
    }

    /// Found by the simulation: an item for a participant code the switch
    /// does not know waited the whole offline wait (10 minutes) as if its
    /// payee were merely offline. It fails RC07 at once.
    #[test]
    fn an_item_for_an_unknown_participant_fails_at_once() {
        let mut h = harness();
        let items = vec![item("U1", to_account(7, "10"), 1_00), item("U2", to_account(2, "10"), 2_00)]; // 7: no such participant
        submit(&mut h, header("ENV-U", 2, 3_00), items).unwrap();
        assert_eq!(drive(&mut h, 100), 2, "both items start now");
        let items = items_of(&mut h, "ENV-U");
        assert!(
            matches!(
                items[0].outcome,
                ItemOutcome::Failed { reason: ReasonCode::UnknownPayeeParticipant, id: Some(_) }
            ),
            "{:?}",
            items[0].outcome
        );
        assert!(matches!(items[1].outcome, ItemOutcome::InProgress { .. }));
    }

    #[test]
    fn a_mixed_envelope_gives_the_exact_outcome_of_every_item() {
        let mut h = harness();
        let items = vec![
            item("D1", to_account(2, "10"), 100_00),
            item("D2", phone("+5561988880000"), 200_00),
            item("D3", phone("+5561900000000"), 300_00), // nobody holds this key
            item("D4", to_account(2, "10"), 400_00),     // same beneficiary as D1
            item("D5", to_account(2, "99"), 500_00),     // the payee rejects account 99
        ];
        let sealed = submit(&mut h, header("ENV-1", 5, 1_500_00), items).unwrap();
        assert_eq!((sealed.received, sealed.failed_count, sealed.complete), (5, 1, false));
        assert_eq!(drive(&mut h, 2), 2, "the budget is the pace");
        assert_eq!(drive(&mut h, 100), 2, "the flagged item is never started");
        assert_eq!(drive(&mut h, 100), 0);
        answer_all(&mut h, 2, "99");
        answer_all(&mut h, 3, "");
        let items = items_of(&mut h, "ENV-1");
        let outcome = |i: usize| items[i].outcome;
        assert!(matches!(outcome(0), ItemOutcome::Paid { .. }));
        assert!(matches!(outcome(1), ItemOutcome::Paid { .. }));
        assert_eq!(items[1].payee, Some(account(3, "77")), "the key resolved to its account");
        assert!(matches!(outcome(2), ItemOutcome::Failed { reason: ReasonCode::UnknownKey, id: Some(_) }));
        assert!(matches!(outcome(3), ItemOutcome::Failed { reason: ReasonCode::DuplicatePayment, id: None }));
        assert!(matches!(outcome(4), ItemOutcome::Failed { reason: ReasonCode::ClosedAccount, id: Some(_) }));
        let v = view(&mut h.engine, "ENV-1");
        assert_eq!((v.paid_count, v.paid_value, v.failed_count, v.in_progress), (2, Amount::from_minor(300_00), 3, 0));
        assert!(v.complete);
        assert_eq!(h.position(AGENCY), -300_00, "the agency paid exactly what was paid");
        assert_eq!(h.position(2) + h.position(3), 300_00);
        h.engine.check_invariants().unwrap();
        let mut rebuilt = h.replayed();
        rebuilt.check_invariants().unwrap();
        assert_eq!(view(&mut rebuilt, "ENV-1"), v, "the journal rebuilds the same progress");
        h.assert_snapshots_agree();
    }

    #[test]
    fn a_complete_envelope_leaves_memory_for_the_archive_and_its_paid_ids_stay_taken_for_the_retention() {
        let mut h = harness();
        h.engine.keep_archive_ops();
        let mut archive = TestArchive::default();
        let items = vec![
            item("P1", to_account(2, "10"), 1_00), // paid
            item("F1", to_account(2, "99"), 2_00), // the payee rejects account 99
            item("D1", to_account(2, "10"), 3_00), // same beneficiary as P1: DUPL
        ];
        submit(&mut h, header("ARC-1", 3, 6_00), items).unwrap();
        drive(&mut h, 100);
        answer_all(&mut h, 2, "99");
        let before = items_of(&mut h, "ARC-1");
        let receipt = view(&mut h.engine, "ARC-1");
        assert!(receipt.complete);
        let page = |h: &mut Harness, offset: u32, limit: u32| {
            let command = op::EnvelopeItems {
                caller: Some(pid(AGENCY)),
                agency: pid(AGENCY),
                reference: "ARC-1".into(),
                offset,
                limit,
            };
            h.engine.execute(T0, command, &mut Output::default()).unwrap()
        };
        // Within final_record_ms of completing, the items stay in memory.
        h.expire(T0 + 10_000);
        archive.absorb(h.engine.take_archive_ops());
        assert!(archive.items.is_empty());
        let final_record_ms = h.engine.config().final_record_ms;
        h.expire(T0 + 10 + final_record_ms);
        archive.absorb(h.engine.take_archive_ops());
        assert_eq!(archive.items, before, "the archive holds each item as it was answered");
        let archived = page(&mut h, 1, 5);
        assert!(archived.items.is_empty(), "nothing of it left in memory");
        let range = archived.archived.unwrap();
        assert_eq!((range.from, range.to), (1, 3), "the page asks the archive for items 1 and 2");
        assert!(range.mark.ops <= archive.next, "the archive already holds what the page needs");
        assert_eq!(view(&mut h.engine, "ARC-1"), receipt, "the receipt stays whole");
        h.engine.check_invariants().unwrap();
        h.assert_snapshots_agree();
        // The paid item's id stays taken; the failed and flagged ones' are free.
        let again = vec![item("P1", to_account(2, "11"), 1_00), item("F1", to_account(2, "12"), 2_00)];
        let sealed = submit(&mut h, header("ARC-2", 2, 3_00), again.clone()).unwrap();
        assert_eq!(sealed.failed_count, 1, "P1 was paid: flagged DUPL; F1 failed: payable");
        // Past the retention the envelope is forgotten: its reference and
        // the paid id are free again.
        let retention = h.engine.config().retention_ms();
        h.expire(T0 + 20 + final_record_ms + retention);
        let command = op::GetEnvelope { caller: None, agency: pid(AGENCY), reference: "ARC-1".into() };
        assert!(matches!(h.run(T0, command), Err(EnvelopeError::Unknown(_))));
        let sealed = submit(&mut h, header("ARC-3", 1, 1_00), again[..1].to_vec()).unwrap();
        assert_eq!(sealed.failed_count, 0, "P1 is payable once its envelope is past the retention");
        h.engine.check_invariants().unwrap();
        h.replayed().check_invariants().unwrap();
        h.assert_snapshots_agree();
    }

    #[test]
    fn control_totals_and_repeated_ids_are_checked_before_anything_is_paid() {
        let mut h = harness();
        let two = || vec![item("A", to_account(2, "1"), 1_00), item("B", to_account(2, "2"), 2_00)];
        let error = submit(&mut h, header("C1", 2, 4_00), two()).unwrap_err();
        assert_eq!(
            error,
            EnvelopeError::ControlTotalMismatch { expected: Amount::from_minor(4_00), found: Amount::from_minor(3_00) }
        );
        let error = submit(&mut h, header("C2", 3, 3_00), two()).unwrap_err();
        assert_eq!(error, EnvelopeError::ControlCountMismatch { expected: 3, found: 2 });
        let repeated = vec![item("A", to_account(2, "1"), 1_00), item("A", to_account(2, "2"), 2_00)];
        assert_eq!(
            submit(&mut h, header("C3", 2, 3_00), repeated).unwrap_err(),
            EnvelopeError::RepeatedDisbursementId("A".into())
        );
        let error = submit(&mut h, header("C4", 1, 1_00), vec![item("Z", to_account(2, "1"), 0)]).unwrap_err();
        assert!(matches!(error, EnvelopeError::InvalidItem { index: 0, .. }), "{error}");
        assert_eq!(drive(&mut h, 100), 0, "nothing of a refused envelope is paid");
        assert_eq!(h.position(AGENCY), 0);
        // Refused envelopes left nothing behind: their references and
        // disbursement ids are free.
        for reference in ["C1", "C2", "C3", "C4"] {
            let command = op::GetEnvelope { caller: None, agency: pid(AGENCY), reference: reference.into() };
            assert!(matches!(h.run(T0, command), Err(EnvelopeError::Unknown(_))), "{reference}");
        }
        let sealed = submit(&mut h, header("C1", 2, 3_00), two()).unwrap();
        assert_eq!(sealed.failed_count, 0, "ids of refused envelopes are not taken");
        h.engine.check_invariants().unwrap();
        h.replayed().check_invariants().unwrap();
    }

    #[test]
    fn an_envelope_sent_again_pays_nobody_twice_and_a_changed_one_is_refused() {
        let mut h = harness();
        let items = vec![item("A", to_account(2, "1"), 1_00), item("B", to_account(2, "2"), 2_00)];
        submit(&mut h, header("R1", 2, 3_00), items.clone()).unwrap();
        drive(&mut h, 100);
        answer_all(&mut h, 2, "");
        let again = submit(&mut h, header("R1", 2, 3_00), items.clone());
        assert_eq!(again.unwrap().paid_count, 2, "the same envelope: its receipt");
        assert_eq!(drive(&mut h, 100), 0);
        let mut changed = items.clone();
        changed[1].amount = Amount::from_minor(5_00);
        let error = submit(&mut h, header("R1", 2, 6_00), changed).unwrap_err();
        assert_eq!(error, EnvelopeError::ReferenceReused("R1".into()));
        // The same disbursement ids in a new envelope: flagged, never paid.
        let sealed = submit(&mut h, header("R2", 2, 3_00), items).unwrap();
        assert_eq!(sealed.failed_count, 2);
        assert_eq!(drive(&mut h, 100), 0);
        assert_eq!(h.position(AGENCY), -3_00);
    }

    #[test]
    fn a_failed_disbursement_may_be_paid_by_a_later_envelope() {
        let mut h = harness();
        submit(&mut h, header("F1", 1, 1_00), vec![item("A", to_account(2, "99"), 1_00)]).unwrap();
        drive(&mut h, 100);
        answer_all(&mut h, 2, "99");
        let sealed = submit(&mut h, header("F2", 1, 1_00), vec![item("A", to_account(2, "1"), 1_00)]).unwrap();
        assert_eq!(sealed.failed_count, 0, "the earlier attempt failed, so the id is free");
        drive(&mut h, 100);
        answer_all(&mut h, 2, "99");
        assert_eq!(h.position(AGENCY), -1_00);
        // And once paid, a third envelope cannot pay it again.
        let sealed = submit(&mut h, header("F3", 1, 1_00), vec![item("A", to_account(2, "5"), 1_00)]).unwrap();
        assert_eq!(sealed.failed_count, 1);
    }

    #[test]
    fn a_restart_mid_envelope_finishes_the_rest_and_pays_each_item_once() {
        let mut h = harness();
        let items: Vec<_> = (0..40).map(|i| item(&format!("P{i}"), to_account(2, &format!("{i}")), 1_00 + i)).collect();
        let total: i64 = (0..40).map(|i| 1_00 + i).sum();
        submit(&mut h, header("M1", 40, total), items).unwrap();
        drive(&mut h, 15);
        answer_all(&mut h, 2, "");
        drive(&mut h, 5); // five more started, not answered: the switch "crashes"
        let mut h2 =
            Harness { engine: h.replayed(), journal: h.journal.clone(), finals: Vec::new(), effects: Vec::new() };
        h2.engine.check_invariants().unwrap();
        assert_eq!(view(&mut h2.engine, "M1").in_progress, 5);
        // Before the payee reconnects nothing is started: its items wait.
        assert_eq!(drive(&mut h2, 1_000), 0);
        h2.run(T0, op::InboxOpened(pid(2)));
        // The five in flight time out (their payee never heard of them after
        // the restart); the rest are started exactly once.
        h2.expire(T0 + 60_000);
        assert_eq!(drive(&mut h2, 1_000), 20, "the waiting items, once each");
        assert_eq!(drive(&mut h2, 1_000), 0);
        answer_all(&mut h2, 2, "");
        let v = view(&mut h2.engine, "M1");
        assert_eq!((v.paid_count, v.failed_count, v.in_progress), (35, 5, 0));
        assert!(v.complete);
        let paid: i64 = items_of(&mut h2, "M1")
            .iter()
            .filter(|i| matches!(i.outcome, ItemOutcome::Paid { .. }))
            .map(|i| i.item.amount.minor())
            .sum();
        assert_eq!(h2.position(AGENCY), -paid);
        h2.engine.check_invariants().unwrap();
    }

    #[test]
    fn only_the_agency_sees_and_fills_its_envelope() {
        let mut h = harness();
        submit(&mut h, header("S1", 1, 1_00), vec![item("A", to_account(2, "1"), 1_00)]).unwrap();
        let command = op::GetEnvelope { caller: Some(pid(2)), agency: pid(AGENCY), reference: "S1".into() };
        assert!(matches!(h.run(T0, command), Err(EnvelopeError::Unknown(_))));
        let mut foreign = header("S2", 1, 1_00);
        foreign.paying_account = account(2, "1");
        let reply = h.run(T0, op::OpenEnvelope { caller: pid(AGENCY), header: foreign, digest: 1 });
        assert!(matches!(reply, Err(EnvelopeError::PayingAccountNotAgency)));
        let reply = h.run(T0, op::OpenEnvelope { caller: pid(2), header: header("S3", 1, 1_00), digest: 1 });
        assert!(matches!(reply, Err(EnvelopeError::AgencyNotActive(_))));
        let mut dollars = header("S4", 1, 1_00);
        dollars.currency = "USD".into();
        let reply = h.run(T0, op::OpenEnvelope { caller: pid(AGENCY), header: dollars, digest: 1 });
        assert!(matches!(reply, Err(EnvelopeError::InvalidHeader(m)) if m.contains("settles BRL")));
    }

    #[test]
    fn an_item_for_a_payee_that_stays_offline_fails_after_the_wait() {
        let mut h = harness();
        h.run(T0, op::InboxClosed(pid(3)));
        let items = vec![item("A", to_account(3, "1"), 1_00), item("B", to_account(2, "1"), 2_00)];
        submit(&mut h, header("O1", 2, 3_00), items).unwrap();
        assert_eq!(drive(&mut h, 100), 1, "the online payee's item goes; the other waits");
        let wait = h.engine.config().disbursement_offline_wait_ms;
        let mut out = Output::default();
        assert_eq!(h.engine.drive_disbursements(T0 + wait / 2, 100, 1_000, &mut out), 0);
        assert_eq!(h.engine.drive_disbursements(T0 + 2 + wait, 100, 1_000, &mut out), 1);
        h.absorb(out);
        answer_all(&mut h, 2, "");
        let items = items_of(&mut h, "O1");
        assert!(matches!(items[0].outcome, ItemOutcome::Failed { reason: ReasonCode::PayeeOffline, .. }));
        assert!(matches!(items[1].outcome, ItemOutcome::Paid { .. }));
        assert!(view(&mut h.engine, "O1").complete);
    }
}

/// Journals store content digests: the fast one-shot path must give the
/// streaming hasher's value (the original definition) for every size,
/// including parts too long for its stack buffer.
#[test]
fn content_digests_match_the_streaming_definition() {
    let long = vec![b'x'; 700];
    for size in [0_usize, 1, 139, 140, 400, 480, 700] {
        let remittance = &long[..size];
        let parts: [&[u8]; 4] = [b"10000001", &1234_i64.to_le_bytes(), remittance, b""];
        assert_eq!(
            crate::digest::content_digest_parts(&parts),
            crate::digest::content_digest_streaming(&parts),
            "size {size}"
        );
    }
}
