//! Hot state and archive: what leaves the engine's memory, when, and what
//! the engine keeps so that answers about it stay exact.
//!
//! A transfer keeps its full record in the table while it is in flight,
//! and for `final_record_ms` after it became final (status queries and
//! returns soon after settlement are answered from memory). Then
//! eviction (an [`Event::Evicted`], journaled like any change, so replay
//! evicts at the same point) hands the oldest full records to the archive
//! as [`ArchiveOp`]s numbered in order, and the table keeps for each only
//! a window entry ([`crate::table::Seen`]: fingerprint, content digest,
//! outcome), enough to answer a resubmission, while its end-to-end id
//! could still be submitted again (its id timestamp inside
//! `id_age_ms_max`; an older id is refused `DT01` at submission, so it can
//! never be settled twice; an id stamped up to the future skew ahead simply
//! stays that much longer). Past that, an [`Event::Forgotten`] drops the
//! oldest entries.
//!
//! The driver writes the ops to the store off the engine thread and says
//! how far it got; a query that misses the full records waits until the
//! archive has written every op numbered before the miss ([`NotHeld`]), so
//! "not in memory" and "not in the archive" are never both true of a
//! transfer the engine recorded.
//!
//! A return may still come for an archived payment (within the return
//! window, 90 days by default). The switch reads the original from the
//! archive and hands it to the engine with the return; the engine keeps,
//! per archived payment with returns, the total returned since it was
//! archived ([`LateReturns`]) until its return window closes, so the cap
//! (never more than the original in total) holds exactly across table and
//! archive. Each such return is also an archive op, so the archive's view
//! of the payment adds it.

use crate::payments::Transfer;
use crate::table::{Map, Seen};
use crate::{Engine, Event, Output};
use ponte_domain::{Amount, EndToEndId, ParticipantId, TimestampMs, TransferState, TransferView};
use ponte_settlement::report::SettledMovement;
use std::collections::BTreeSet;

/// Most transfers one eviction (or forgetting) event moves: bounds the
/// engine thread's pause (each costs a copy, or an index removal).
pub const EVICT_BATCH_MAX: usize = 4_096;

/// A transfer as the archive keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArchivedTransfer {
    /// Its position in the engine's recording order (never reused).
    pub position: u64,
    /// As it was when it left the table (`returned`: returned by then),
    /// less what only the hot path used: its content digest (the window
    /// entry keeps it while resubmissions are possible) and its payee
    /// deadline (both 0).
    pub transfer: Transfer,
    /// The payment it gives back, for a return.
    pub original: Option<EndToEndId>,
}

impl ArchivedTransfer {
    /// What `caller` may see of it (nothing unless it is one of the two
    /// sides), with `late` returned since it was archived.
    pub fn view_for(&self, caller: ParticipantId, late: Amount) -> Option<TransferView> {
        let mut view = crate::payments::view_of(caller, &self.transfer, self.original)?;
        view.returned = view.returned.checked_add(late).expect("returned overflow");
        Some(view)
    }

    /// Its movement in its cycle's report (settled transfers only).
    pub fn movement(&self) -> Option<SettledMovement> {
        (self.transfer.state == TransferState::Settled).then(|| crate::cycles::movement_of(&self.transfer))
    }
}

/// One change the archive must make, in engine order.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveOp {
    /// A transfer left the engine's memory.
    Transfer(Box<ArchivedTransfer>),
    /// A return settled against a payment already archived: the archive
    /// adds `amount` to what the original shows as returned.
    LateReturn { original: EndToEndId, original_cycle: u32, id: EndToEndId, amount: Amount },
    /// Items of a complete envelope left the engine's memory.
    EnvelopeItems(Box<crate::disbursement::ArchivedItems>),
}

/// An archive op and its number (ops are numbered from 0, without gaps,
/// over the engine's whole history; a store records the last it wrote).
#[derive(Debug, Clone, PartialEq)]
pub struct NumberedOp {
    pub number: u64,
    pub op: ArchiveOp,
}

/// What a query that missed the engine's memory must read in the archive:
/// the archive is complete for it once it has written every op numbered
/// below `ops`; of a cycle's transfers, those at positions below `head`
/// are there (the rest were in memory and already answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHeld {
    pub ops: u64,
    pub head: u64,
}

/// Returns settled against archived payments, per original, until its
/// return window closes.
#[derive(Debug, Default, Clone)]
pub(crate) struct LateReturns {
    returned: Map<EndToEndId, (Amount, TimestampMs)>,
    closing: BTreeSet<(TimestampMs, EndToEndId)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LateReturn {
    pub original: EndToEndId,
    pub returned: Amount,
    pub closes_at: TimestampMs,
}

impl LateReturns {
    pub(crate) fn returned(&self, original: &EndToEndId) -> Amount {
        self.returned.get(original).map_or(Amount::ZERO, |&(amount, _)| amount)
    }

    fn add(&mut self, original: EndToEndId, amount: Amount, closes_at: TimestampMs) {
        let entry = self.returned.entry(original).or_insert((Amount::ZERO, closes_at));
        entry.0 = entry.0.checked_add(amount).expect("returned overflow");
        self.closing.insert((closes_at, original));
    }

    /// Forgets the originals whose return window closed before `now`.
    fn close(&mut self, now: TimestampMs) {
        while let Some(&(closes_at, original)) = self.closing.first() {
            if closes_at >= now {
                break;
            }
            self.closing.pop_first();
            self.returned.remove(&original);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.returned.len()
    }

    /// Every entry, sorted by original (for snapshots).
    pub(crate) fn sorted(&self) -> Vec<LateReturn> {
        let mut all: Vec<_> = self
            .returned
            .iter()
            .map(|(&original, &(returned, closes_at))| LateReturn { original, returned, closes_at })
            .collect();
        all.sort_unstable_by_key(|late| late.original);
        all
    }

    pub(crate) fn restore(entries: Vec<LateReturn>) -> LateReturns {
        let mut late = LateReturns::default();
        for entry in entries {
            late.add(entry.original, entry.returned, entry.closes_at);
        }
        late
    }
}

impl Engine {
    /// Turns archive ops on: from now on every eviction and late return is
    /// also kept for [`Engine::take_archive_ops`]. The serving engine and
    /// start-up replay turn it on; a follower or a test engine need not.
    pub fn keep_archive_ops(&mut self) {
        self.archive_out.get_or_insert_with(Vec::new);
    }

    /// The archive ops made since the last call (empty unless
    /// [`Engine::keep_archive_ops`] was called).
    pub fn take_archive_ops(&mut self) -> Vec<NumberedOp> {
        self.archive_out.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Archive ops made and not yet taken.
    pub fn pending_archive_ops(&self) -> usize {
        self.archive_out.as_ref().map_or(0, Vec::len)
    }

    /// Archive ops made over the engine's whole history.
    pub fn archive_ops(&self) -> u64 {
        self.archive_ops
    }

    /// What a query missing the table now must read in the archive.
    pub fn not_held(&self) -> NotHeld {
        NotHeld { ops: self.archive_ops, head: self.transfers.head() as u64 }
    }

    /// Transfers evicted from memory so far.
    pub fn evicted(&self) -> u64 {
        self.transfers.head() as u64
    }

    /// Archived payments with returns whose window is still open.
    pub fn late_return_count(&self) -> usize {
        self.late_returns.len()
    }

    /// Whether `t`'s full record can leave memory: final for longer than
    /// `final_record_ms`.
    fn evictable(&self, t: &Transfer, before: TimestampMs) -> bool {
        matches!(t.state, TransferState::Settled | TransferState::Rejected)
            && t.settled_at.unwrap_or(t.created_at) < before
    }

    /// Hands the oldest full records that no longer need to be in memory
    /// to the archive, forgets the oldest window entries whose ids left the
    /// window (at most [`EVICT_BATCH_MAX`] of each), and forgets late
    /// returns whose window closed.
    pub(crate) fn evict(&mut self, now: TimestampMs, out: &mut Output) {
        if self.archive_out.is_none() {
            return; // no archive to take them: everything stays in memory
        }
        let before = now.saturating_sub(self.config.final_record_ms.max(0));
        let (head, end) = (self.transfers.head(), self.transfers.end());
        let mut through = head;
        while through < end && through - head < EVICT_BATCH_MAX && self.evictable(self.transfers.at(through), before) {
            through += 1;
        }
        let closing = self.late_returns.closing.first().is_some_and(|&(closes_at, _)| closes_at < now);
        if through > head || closing {
            self.record(Event::Evicted { through: through as u64, at: now }, out);
        }
        // An id stamped before this is refused at submission (DT01), so
        // nothing needs its window entry any more.
        let cutoff = now.saturating_sub(self.config.id_age_ms_max);
        let first = self.transfers.seen_head();
        let forget = first
            + self.transfers.seen_values().take(EVICT_BATCH_MAX).take_while(|seen| seen.leaves_at() < cutoff).count();
        if forget > first {
            self.record(Event::Forgotten { through: forget as u64 }, out);
        }
        self.evict_envelopes(now, out);
    }

    pub(crate) fn apply_evicted(&mut self, through: u64, at: TimestampMs) {
        let through = usize::try_from(through).expect("a position");
        assert!(through <= self.transfers.end(), "eviction past the last transfer");
        while self.transfers.head() < through {
            let position = self.transfers.head();
            let transfer = self.transfers.at(position);
            let seen = Seen::of(transfer);
            let original = self.originals.remove(&transfer.id);
            number_op(&mut self.archive_out, &mut self.archive_ops, || {
                let transfer = Transfer { digest: 0, deadline: 0, ..transfer.clone() };
                ArchiveOp::Transfer(Box::new(ArchivedTransfer { position: position as u64, transfer, original }))
            });
            self.transfers.demote_head(seen);
        }
        self.late_returns.close(at);
    }

    pub(crate) fn apply_forgotten(&mut self, through: u64) {
        let through = usize::try_from(through).expect("a position");
        assert!(through <= self.transfers.head(), "forgetting a transfer held in full");
        self.transfers.forget_through(through);
    }

    /// A return against an archived payment settled: the late total grows
    /// (until the original's return window closes) and the archive is told.
    pub(crate) fn apply_late_return(
        &mut self,
        id: EndToEndId,
        original: EndToEndId,
        original_cycle: u32,
        amount: Amount,
        closes_at: TimestampMs,
    ) {
        self.late_returns.add(original, amount, closes_at);
        number_op(&mut self.archive_out, &mut self.archive_ops, || ArchiveOp::LateReturn {
            original,
            original_cycle,
            id,
            amount,
        });
    }
}

/// Counts one archive op (live or on replay, so numbers match), and keeps
/// it, built by `op`, when the driver takes them.
pub(crate) fn number_op(out: &mut Option<Vec<NumberedOp>>, count: &mut u64, op: impl FnOnce() -> ArchiveOp) {
    if let Some(ops) = out.as_mut() {
        ops.push(NumberedOp { number: *count, op: op() });
    }
    *count += 1;
}
