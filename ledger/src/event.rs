//! Journal events: the durable record of every change to the ledger.
//!
//! Encoded with postcard (compact varints, no field names): a settled payment
//! costs two events of roughly 130 and 10 bytes plus its remittance text.
//! Variants are only ever appended, never reordered, so old journals replay.

use ponte_directory::claims::Claim;
use ponte_directory::keys::Key;
use ponte_directory::registry::Entry;
use ponte_domain::{Account, Amount, EndToEndId, ParticipantId, ReasonCode, TimestampMs};

use super::ParticipantStatus;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event<'a> {
    ParticipantRegistered {
        id: ParticipantId,
        name: &'a str,
        net_debit_cap: Amount,
    },
    LimitSet {
        id: ParticipantId,
        net_debit_cap: Amount,
    },
    StatusSet {
        id: ParticipantId,
        status: ParticipantStatus,
    },
    /// A payment passed every check; the payer's liquidity is held.
    Reserved {
        id: EndToEndId,
        payer: Account,
        payee: Account,
        amount: Amount,
        digest: u128,
        at: TimestampMs,
        deadline: TimestampMs,
        remittance: &'a str,
    },
    /// The payee accepted a reserved payment: positions moved.
    Settled {
        id: EndToEndId,
        at: TimestampMs,
    },
    /// A reserved payment was refused by its payee or timed out.
    Rejected {
        id: EndToEndId,
        reason: ReasonCode,
        at: TimestampMs,
    },
    /// A payment or return refused before reserving anything; kept so the
    /// same id gets the same answer.
    Refused {
        id: EndToEndId,
        payer: Account,
        payee: Account,
        amount: Amount,
        digest: u128,
        reason: ReasonCode,
        at: TimestampMs,
        original: Option<EndToEndId>,
    },
    /// A return settled: `payer` (the original payee) paid `payee` back.
    ReturnSettled {
        id: EndToEndId,
        original: EndToEndId,
        payer: Account,
        payee: Account,
        amount: Amount,
        digest: u128,
        reason: ReasonCode,
        at: TimestampMs,
    },
    /// A directory key was registered.
    KeyRegistered {
        entry: Entry,
    },
    KeyDeleted {
        key: Key,
    },
    /// A key now points at another account of its holder.
    KeyMoved {
        key: Key,
        account: Account,
    },
    /// A claim was opened or changed state (not completed).
    ClaimStored {
        claim: Claim,
    },
    /// A claim completed: the key moved to the claimer's `entry`.
    ClaimCompleted {
        claim: Claim,
        entry: Entry,
    },
    /// The operator set a participant's lookup category.
    LookupCategorySet {
        id: ParticipantId,
        category: char,
    },
    /// The operator set a participant's liquidity model.
    LiquiditySet {
        id: ParticipantId,
        liquidity: super::Liquidity,
    },
    /// Funds in (positive) or out (negative) of a prefunded balance.
    FundsMoved {
        id: ParticipantId,
        amount: Amount,
    },
    /// Cycle 1 opened (later cycles open when the previous one closes).
    CycleOpened {
        id: u64,
        at: TimestampMs,
    },
    /// The open cycle closed: later settlements land in the next one.
    CycleClosed {
        id: u64,
        at: TimestampMs,
    },
    /// The central bank confirmed the cycle's RTGS posting.
    CycleSettled {
        id: u64,
        at: TimestampMs,
    },
    /// A paying agency opened an envelope (or restarted an upload cut short).
    EnvelopeOpened {
        number: u64,
        header: super::EnvelopeHeader,
        digest: u128,
        at: TimestampMs,
    },
    /// Items of an open envelope, in order; `flagged` (envelope indexes)
    /// are DUPL: never paid.
    EnvelopeItemsAdded {
        number: u64,
        items: Vec<super::EnvelopeItem>,
        flagged: Vec<u32>,
    },
    /// The envelope matched its control totals: its items are paid.
    EnvelopeSealed {
        number: u64,
        at: TimestampMs,
    },
    /// An envelope that did not match its control totals at sealing: gone,
    /// its reference and disbursement ids free again.
    EnvelopeDiscarded {
        number: u64,
    },
    /// An item's payment starts under `id` (its events follow).
    EnvelopeItemStarted {
        number: u64,
        index: u32,
        id: EndToEndId,
        counter: u64,
    },
    /// The transfers before position `through` left memory for the
    /// archive; late returns whose window closed before `at` are forgotten.
    Evicted {
        through: u64,
        at: TimestampMs,
    },
    /// A return settled against a payment already archived (its return
    /// window closes at `closes_at`; it settled in `original_cycle`).
    LateReturnSettled {
        id: EndToEndId,
        original: EndToEndId,
        payer: Account,
        payee: Account,
        amount: Amount,
        digest: u128,
        reason: ReasonCode,
        at: TimestampMs,
        closes_at: TimestampMs,
        original_cycle: u32,
    },
    /// The duplicate window forgot the transfers before position `through`
    /// (their ids are refused for their age from now on).
    Forgotten {
        through: u64,
    },
    /// Claims closed before `before` (past the retention) were forgotten:
    /// asked for, they are unknown from now on.
    ClaimsForgotten {
        before: TimestampMs,
    },
    /// Items of complete envelope `number` up to index `through` left
    /// memory for the archive.
    EnvelopeItemsArchived {
        number: u64,
        through: u32,
    },
    /// Archived envelope `number`, past the retention, released the
    /// disbursement ids of its paid items up to `through`; once all are,
    /// it is forgotten.
    EnvelopeForgotten {
        number: u64,
        through: u32,
    },
    /// A payer's participant recalled a settled payment (state `Open`).
    RecallOpened {
        recall: crate::Recall,
    },
    /// An open recall was refused or expired (a return accepts one as it
    /// settles, without an event of its own).
    RecallClosed {
        original: EndToEndId,
        state: crate::RecallState,
        at: TimestampMs,
    },
    /// Closed recalls whose payment's return window ended before `before`
    /// were forgotten.
    RecallsForgotten {
        before: TimestampMs,
    },
}

impl Event<'_> {
    /// The transfer whose record applying this event looks up or inserts
    /// (a replay prefetches its index line a few events ahead).
    pub fn transfer(&self) -> Option<&EndToEndId> {
        match self {
            Event::Reserved { id, .. }
            | Event::Settled { id, .. }
            | Event::Rejected { id, .. }
            | Event::Refused { id, .. }
            | Event::ReturnSettled { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn encode_into(&self, buffer: &mut Vec<u8>) {
        // Payment events fit a small stack buffer, which postcard fills
        // without a capacity check per byte; then one copy. Larger events
        // (envelope chunks) go straight to the Vec.
        let mut scratch = [0_u8; 1024];
        match postcard::to_slice(self, &mut scratch) {
            Ok(bytes) => buffer.extend_from_slice(bytes),
            Err(_) => postcard::serialize_with_flavor(self, AppendTo(buffer)).expect("encoding to a Vec cannot fail"),
        }
    }
}

/// Appends to a `Vec` a slice at a time (postcard's `ExtendFlavor` goes
/// byte by byte through an iterator): for events too large for the stack
/// buffer, such as envelope chunks.
struct AppendTo<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes the events of one journal record, in order.
pub fn decode_events<'a>(mut bytes: &'a [u8]) -> impl Iterator<Item = Result<Event<'a>, postcard::Error>> + 'a {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        match postcard::take_from_bytes::<Event<'a>>(bytes) {
            Ok((event, rest)) => {
                bytes = rest;
                Some(Ok(event))
            }
            Err(error) => {
                bytes = &[];
                Some(Err(error))
            }
        }
    })
}
