//! Bulk disbursement: envelopes of payments from a government paying agency.
//!
//! An envelope is accepted whole or not at all. It arrives as three kinds of
//! command — open (header and control totals), add items (chunks of at most
//! [`ENVELOPE_CHUNK_ITEMS_MAX`]), seal — each journaled, so a million items
//! never make one giant journal record or stall retail payments. Every
//! check is made per chunk, in time proportional to the chunk: a repeated
//! disbursement id refuses the chunk; an item whose disbursement id the
//! agency already paid or has in progress, or whose beneficiary appears
//! earlier in the envelope, is flagged DUPL (never paid). Sealing only
//! compares the running count and total with the header; an envelope that
//! does not match is discarded whole.
//!
//! Sealed envelopes are paid by [`Engine::drive_disbursements`], which the
//! runtime calls between command batches with a budget (the configured pace),
//! so disbursements never starve real-time payments. Each item becomes an
//! ordinary payment (directory resolution, the agency's liquidity, the
//! payee's answer) under an end-to-end id the engine makes; the
//! `EnvelopeItemStarted` event links item and payment before the payment's
//! own events, so after any restart an item is either started (its outcome
//! is its payment's) or not (it is paid then). Nothing is paid twice: an
//! item is started at most once, and a disbursement id is taken by a new
//! envelope only if every earlier item with that id failed.

mod apply;
mod paying;
pub(crate) mod snapshot;

use crate::{Engine, Event, Output};
use apply::beneficiary_hash;
use ponte_domain::{Account, Amount, EndToEndId, ParticipantId, ReasonCode, TimestampMs, TransferState};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

pub use ponte_disbursement::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("participant {0} is not an active participant")]
    AgencyNotActive(ParticipantId),
    #[error("the paying account must be the agency's own")]
    PayingAccountNotAgency,
    #[error("{0}")]
    InvalidHeader(String),
    #[error("envelope reference {0:?} was already used with different content")]
    ReferenceReused(String),
    #[error("no envelope {0:?} of this agency")]
    Unknown(String),
    #[error("the envelope is already sealed")]
    AlreadySealed,
    #[error("at most {ENVELOPE_ITEMS_MAX} items per envelope and {ENVELOPE_CHUNK_ITEMS_MAX} per message")]
    TooManyItems,
    #[error("the control count says {expected} items; {found} were sent")]
    ControlCountMismatch { expected: u32, found: u32 },
    #[error("the control total says {expected}; the items add up to {found}")]
    ControlTotalMismatch { expected: Amount, found: Amount },
    #[error("disbursement id {0:?} appears more than once in the envelope")]
    RepeatedDisbursementId(String),
    #[error("item {index}: {reason}")]
    InvalidItem { index: u32, reason: String },
}

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ItemOutcome {
    /// Not paid yet: waits for its turn.
    Waiting,
    /// Its payment waits for the payee's answer.
    InProgress {
        id: EndToEndId,
    },
    Paid {
        id: EndToEndId,
        at: TimestampMs,
    },
    /// Not paid: flagged at sealing (no id), or its payment was rejected.
    Failed {
        reason: ReasonCode,
        id: Option<EndToEndId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemView {
    pub index: u32,
    pub item: EnvelopeItem,
    pub outcome: ItemOutcome,
    /// The account paid (a key's account once resolved).
    pub payee: Option<Account>,
}

/// An envelope's header and progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeView {
    pub header: EnvelopeHeader,
    pub digest: u128,
    pub opened_at: TimestampMs,
    pub sealed_at: Option<TimestampMs>,
    /// Items received so far (all of them once sealed).
    pub received: u32,
    pub paid_count: u32,
    pub paid_value: Amount,
    pub failed_count: u32,
    pub failed_value: Amount,
    pub in_progress: u32,
    /// Sealed, and every item paid or failed.
    pub complete: bool,
    /// Internal number, for the follow-up commands of an upload.
    pub number: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Slot {
    item: EnvelopeItem,
    transfer: Option<EndToEndId>,
    flagged: Option<ReasonCode>,
    /// Its payment's outcome once final, kept here so that an envelope
    /// answers for its items after their payments left memory.
    end: Option<Progress>,
}

/// Where an item's payment stands, from the slot or the transfer table.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Progress {
    state: TransferState,
    settled_at: Option<TimestampMs>,
    reason: Option<ReasonCode>,
    payee: Account,
}

impl Progress {
    fn of(t: &crate::Transfer) -> Progress {
        Progress { state: t.state, settled_at: t.settled_at.or(Some(t.created_at)), reason: t.reason, payee: t.payee }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Envelope {
    header: EnvelopeHeader,
    digest: u128,
    opened_at: TimestampMs,
    sealed_at: Option<TimestampMs>,
    slots: Vec<Slot>,
    /// Sum of the items so far, for the seal's control-total check.
    total: Amount,
    /// Beneficiary hash -> items with it, while items arrive (dropped at
    /// the seal): finds repeated beneficiaries per chunk, exactly.
    #[serde(with = "snapshot::sorted_map")]
    beneficiaries: HashMap<u64, Vec<u32>>,
    /// Next slot to consider when driving.
    next: usize,
    paid_count: u32,
    paid_value: Amount,
    failed_count: u32,
    failed_value: Amount,
    in_progress: u32,
    /// When it became complete: sealed, and every item paid or failed.
    completed_at: Option<TimestampMs>,
    /// Items before this index went to the archive (see the module
    /// docs); the slots are freed once every item has.
    archived_through: u32,
    /// Id keys ([`id_key`]) its archived paid items hold in the agency's
    /// ledger (a failed item holds none), released from `released` on
    /// when the envelope is forgotten.
    kept_ids: Vec<u128>,
    released: u32,
}

impl Envelope {
    /// Items received so far: all of them once sealed (the seal checks
    /// the count), also after their slots went to the archive.
    fn received(&self) -> u32 {
        if self.sealed_at.is_some() { self.header.control_count } else { self.slots.len() as u32 }
    }
}

/// The key of a disbursement id in an agency's ledger: its xxh3-128 (two
/// ids share one with odds of 2^-128), so the ledger of an agency that
/// paid tens of millions of items holds 16 bytes per id, not the id.
pub(crate) fn id_key(disbursement_id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(disbursement_id.as_bytes())
}

/// Items per archive op of a complete envelope (and ids released per
/// step when it is forgotten): bounds the engine thread's pause.
pub const ENVELOPE_PIECE_ITEMS: u32 = 4_096;

/// A run of a complete envelope's items leaving memory for the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedItems {
    pub number: u64,
    pub agency: ParticipantId,
    /// The first item's index (a multiple of [`ENVELOPE_PIECE_ITEMS`]).
    pub first: u32,
    /// When the envelope completed (the archive keeps the items for the
    /// retention from then).
    pub completed_at: TimestampMs,
    pub items: Vec<ItemView>,
}

/// A page of an envelope's items: `archived` (read from the archive once
/// it holds `mark`) then `items` from memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsPage {
    pub archived: Option<ArchivedRange>,
    pub items: Vec<ItemView>,
}

/// Items `from..to` of envelope `number`, in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchivedRange {
    pub number: u64,
    pub from: u32,
    pub to: u32,
    pub mark: crate::NotHeld,
}

/// All envelopes and the indexes that keep payments exactly once.
#[derive(Debug, Default)]
pub struct Disbursements {
    envelopes: BTreeMap<u64, Envelope>,
    by_reference: HashMap<(ParticipantId, String), u64>,
    /// Agency -> disbursement id key ([`id_key`]) -> the latest item that
    /// took it (flagged items take nothing; a failed item's entry goes when
    /// its envelope is archived, a paid one's when it is forgotten).
    ledger: HashMap<ParticipantId, HashMap<u128, (u64, u32)>>,
    /// Started items whose payment is not final yet.
    in_flight: HashMap<EndToEndId, (u64, u32)>,
    /// Sealed envelopes with items not looked at yet, oldest first.
    active: VecDeque<u64>,
    /// Items set aside because their payee participant was offline:
    /// (envelope, item, since). A driver cache, not durable: after a replay
    /// the scan starts again from each envelope's first item.
    deferred: VecDeque<(u64, u32, TimestampMs)>,
    /// Counter behind the end-to-end ids the engine makes for items.
    id_counter: u64,
    /// The number the next envelope gets: never reused, also after older
    /// envelopes were forgotten (the archive keys items by it).
    next_number: u64,
    /// Items of the envelopes held whose slots went to the archive.
    archived_items: u64,
    /// No complete envelope has an archiving or forgetting step due
    /// before this (a cache for [`Engine::evict_envelopes`], which would
    /// otherwise look at every envelope each batch; 0 after a restart).
    evict_at: TimestampMs,
}

impl Disbursements {
    /// Items started and not final, over all envelopes.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Items of the envelopes held that are in the archive, not in memory.
    pub fn archived_items(&self) -> u64 {
        self.archived_items
    }

    /// Whether some sealed envelope still has items to start.
    pub fn has_work(&self) -> bool {
        !self.active.is_empty() || !self.deferred.is_empty()
    }
}

impl Engine {
    pub fn disbursements(&self) -> &Disbursements {
        &self.disbursements
    }

    pub(super) fn open_envelope(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        header: EnvelopeHeader,
        digest: u128,
        out: &mut Output,
    ) -> Result<EnvelopeView, EnvelopeError> {
        let agency = header.agency;
        if agency != caller
            || !self.participants.get(&agency).is_some_and(|p| p.status == super::ParticipantStatus::Active)
        {
            return Err(EnvelopeError::AgencyNotActive(caller));
        }
        if header.paying_account.participant != agency {
            return Err(EnvelopeError::PayingAccountNotAgency);
        }
        check_header_texts(&header).map_err(EnvelopeError::InvalidHeader)?;
        if header.control_count == 0 || header.control_count > ENVELOPE_ITEMS_MAX {
            return Err(EnvelopeError::TooManyItems);
        }
        if header.currency != ponte_domain::CURRENCY {
            return Err(EnvelopeError::InvalidHeader(format!(
                "currency {:?}: this switch settles {}",
                header.currency.chars().take(8).collect::<String>(),
                ponte_domain::CURRENCY
            )));
        }
        let number = match self.disbursements.by_reference.get(&(agency, header.reference.clone())) {
            Some(&number) => {
                let existing = &self.disbursements.envelopes[&number];
                if existing.digest != digest || existing.header != header {
                    return Err(EnvelopeError::ReferenceReused(header.reference));
                }
                if existing.sealed_at.is_some() {
                    // The same envelope again: its receipt, nothing paid again.
                    return Ok(self.envelope_view(number));
                }
                // An upload cut short (a restart, a lost connection): start over.
                number
            }
            None => self.disbursements.next_number.max(1),
        };
        self.record(Event::EnvelopeOpened { number, header, digest, at: now }, out);
        Ok(self.envelope_view(number))
    }

    pub(super) fn add_envelope_items(
        &mut self,
        caller: ParticipantId,
        number: u64,
        items: Vec<EnvelopeItem>,
        out: &mut Output,
    ) -> Result<EnvelopeView, EnvelopeError> {
        match self.check_items(caller, number, &items) {
            Ok(flagged) => {
                self.record(Event::EnvelopeItemsAdded { number, items, flagged }, out);
                Ok(self.envelope_view(number))
            }
            Err(error @ (EnvelopeError::Unknown(_) | EnvelopeError::AlreadySealed)) => Err(error),
            Err(error) => {
                // Refused whole: the items received so far free their ids.
                self.record(Event::EnvelopeDiscarded { number }, out);
                Err(error)
            }
        }
    }

    /// Checks a chunk against the envelope so far and the agency's earlier
    /// envelopes; returns the indexes to flag DUPL.
    fn check_items(
        &self,
        caller: ParticipantId,
        number: u64,
        items: &[EnvelopeItem],
    ) -> Result<Vec<u32>, EnvelopeError> {
        let envelope = self.own_envelope(caller, number)?;
        if envelope.sealed_at.is_some() {
            return Err(EnvelopeError::AlreadySealed);
        }
        if items.len() > ENVELOPE_CHUNK_ITEMS_MAX
            || envelope.slots.len() + items.len() > envelope.header.control_count as usize
        {
            return Err(EnvelopeError::TooManyItems);
        }
        let first = envelope.slots.len() as u32;
        let ledger = self.disbursements.ledger.get(&caller);
        let mut chunk_ids = HashSet::with_capacity(items.len());
        let mut chunk_beneficiaries: HashMap<u64, Vec<usize>> = HashMap::with_capacity(items.len());
        let mut flagged = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let index = first + i as u32;
            check_item(item).map_err(|reason| EnvelopeError::InvalidItem { index, reason })?;
            let id = item.disbursement_id.as_str();
            let earlier = ledger.and_then(|l| l.get(&id_key(id)));
            if !chunk_ids.insert(id) || earlier.is_some_and(|&(n, _)| n == number) {
                return Err(EnvelopeError::RepeatedDisbursementId(id.to_string()));
            }
            let paid_before = earlier.is_some_and(|&(n, j)| !self.item_failed(n, j));
            let hash = beneficiary_hash(&item.beneficiary);
            let seen_in_envelope = envelope.beneficiaries.get(&hash).is_some_and(|indexes| {
                indexes.iter().any(|&j| envelope.slots[j as usize].item.beneficiary == item.beneficiary)
            });
            let same_hash = chunk_beneficiaries.entry(hash).or_default();
            let seen_in_chunk = same_hash.iter().any(|&j| items[j].beneficiary == item.beneficiary);
            same_hash.push(i);
            if paid_before || seen_in_envelope || seen_in_chunk {
                flagged.push(index);
            }
        }
        Ok(flagged)
    }

    pub(super) fn seal_envelope(
        &mut self,
        now: TimestampMs,
        caller: ParticipantId,
        number: u64,
        out: &mut Output,
    ) -> Result<EnvelopeView, EnvelopeError> {
        let envelope = self.own_envelope(caller, number)?;
        if envelope.sealed_at.is_some() {
            return Ok(self.envelope_view(number));
        }
        let header = &envelope.header;
        let found = envelope.slots.len() as u32;
        let mismatch = if found != header.control_count {
            Some(EnvelopeError::ControlCountMismatch { expected: header.control_count, found })
        } else if envelope.total != header.control_total {
            Some(EnvelopeError::ControlTotalMismatch { expected: header.control_total, found: envelope.total })
        } else {
            None
        };
        if let Some(error) = mismatch {
            self.record(Event::EnvelopeDiscarded { number }, out);
            return Err(error);
        }
        self.record(Event::EnvelopeSealed { number, at: now }, out);
        Ok(self.envelope_view(number))
    }

    fn item_failed(&self, number: u64, index: u32) -> bool {
        // A forgotten envelope released its ids with it.
        let Some(envelope) = self.disbursements.envelopes.get(&number) else { return true };
        if index < envelope.archived_through {
            return false; // an archived item keeps its ledger entry only if it was paid
        }
        let slot = &envelope.slots[index as usize];
        slot.flagged.is_some() || self.progress(slot).is_some_and(|p| p.state == TransferState::Rejected)
    }

    fn own_envelope(&self, caller: ParticipantId, number: u64) -> Result<&Envelope, EnvelopeError> {
        match self.disbursements.envelopes.get(&number) {
            Some(envelope) if envelope.header.agency == caller => Ok(envelope),
            _ => Err(EnvelopeError::Unknown(format!("#{number}"))),
        }
    }

    fn find_envelope(&self, caller: Option<ParticipantId>, agency: ParticipantId, reference: &str) -> Option<u64> {
        if caller.is_some_and(|c| c != agency) {
            return None;
        }
        self.disbursements.by_reference.get(&(agency, reference.to_string())).copied()
    }

    /// An envelope's progress, for its agency (`caller`) or the operator (None).
    pub(super) fn get_envelope(
        &self,
        caller: Option<ParticipantId>,
        agency: ParticipantId,
        reference: &str,
    ) -> Result<EnvelopeView, EnvelopeError> {
        self.find_envelope(caller, agency, reference)
            .map(|n| self.envelope_view(n))
            .ok_or_else(|| EnvelopeError::Unknown(reference.to_string()))
    }

    /// A page of item outcomes: those in memory, and the range to read
    /// from the archive before them.
    pub(super) fn envelope_items(
        &self,
        caller: Option<ParticipantId>,
        agency: ParticipantId,
        reference: &str,
        offset: u32,
        limit: u32,
    ) -> Result<ItemsPage, EnvelopeError> {
        let Some(number) = self.find_envelope(caller, agency, reference) else {
            return Err(EnvelopeError::Unknown(reference.to_string()));
        };
        let envelope = &self.disbursements.envelopes[&number];
        let end = offset.saturating_add(limit.min(ITEMS_PAGE_MAX)).min(envelope.received());
        let archived = (offset < end.min(envelope.archived_through)).then(|| ArchivedRange {
            number,
            from: offset,
            to: end.min(envelope.archived_through),
            mark: self.not_held(),
        });
        let hot = offset.max(envelope.archived_through)..end;
        let items = hot.map(|index| self.item_view(index, &envelope.slots[index as usize])).collect();
        Ok(ItemsPage { archived, items })
    }

    /// An item as its agency sees it.
    fn item_view(&self, index: u32, slot: &Slot) -> ItemView {
        let progress = self.progress(slot);
        let outcome = match (slot.flagged, slot.transfer, progress) {
            (Some(reason), _, _) => ItemOutcome::Failed { reason, id: None },
            (None, Some(id), Some(p)) => match p.state {
                TransferState::Settled => ItemOutcome::Paid { id, at: p.settled_at.unwrap_or_default() },
                TransferState::Rejected => {
                    ItemOutcome::Failed { reason: p.reason.expect("rejected transfers carry a reason"), id: Some(id) }
                }
                TransferState::Received | TransferState::Reserved => ItemOutcome::InProgress { id },
            },
            (None, _, _) => ItemOutcome::Waiting,
        };
        let payee = progress.map(|p| p.payee).filter(|a| a.participant.code() != 0);
        ItemView { index, item: slot.item.clone(), outcome, payee }
    }

    /// Complete envelopes leave memory as their payments do: their items
    /// go to the archive `final_record_ms` after the last one became
    /// final, and the envelope (header, totals, the ids its paid items
    /// hold) is forgotten once the retention has passed since. One step
    /// of each (at most [`ENVELOPE_PIECE_ITEMS`] items) per call.
    pub(crate) fn evict_envelopes(&mut self, now: TimestampMs, out: &mut Output) {
        if now < self.disbursements.evict_at {
            return;
        }
        let (keep_ms, retention_ms) = (self.config.final_record_ms.max(0), self.config.retention_ms());
        let (mut archive, mut forget) = (None, None);
        let mut next = TimestampMs::MAX;
        for (&number, e) in &self.disbursements.envelopes {
            let Some(completed_at) = e.completed_at else { continue };
            let held = e.slots.len() as u32;
            let due = if e.archived_through < held {
                completed_at.saturating_add(keep_ms)
            } else {
                completed_at.saturating_add(retention_ms)
            };
            if due >= now {
                next = next.min(due);
            } else if held > 0 && archive.is_none() {
                archive = Some((number, held.min(e.archived_through + ENVELOPE_PIECE_ITEMS)));
            } else if held == 0 && forget.is_none() {
                let kept = e.kept_ids.len() as u32;
                forget = Some((number, kept.min(e.released + ENVELOPE_PIECE_ITEMS)));
            } else {
                next = now; // due too: the next call takes it
            }
        }
        // With a step taken now, look again next call (more may be due).
        self.disbursements.evict_at = if archive.is_some() || forget.is_some() { now } else { next };
        if let Some((number, through)) = archive {
            self.record(Event::EnvelopeItemsArchived { number, through }, out);
        }
        if let Some((number, through)) = forget {
            self.record(Event::EnvelopeForgotten { number, through }, out);
        }
    }

    /// Where a slot's payment stands: its recorded end, or the transfer in memory.
    fn progress(&self, slot: &Slot) -> Option<Progress> {
        slot.end.or_else(|| slot.transfer.and_then(|id| self.transfers.get(&id)).map(Progress::of))
    }

    fn envelope_view(&self, number: u64) -> EnvelopeView {
        let e = &self.disbursements.envelopes[&number];
        EnvelopeView {
            header: e.header.clone(),
            digest: e.digest,
            opened_at: e.opened_at,
            sealed_at: e.sealed_at,
            received: e.received(),
            paid_count: e.paid_count,
            paid_value: e.paid_value,
            failed_count: e.failed_count,
            failed_value: e.failed_value,
            in_progress: e.in_progress,
            complete: e.completed_at.is_some(),
            number,
        }
    }
}
