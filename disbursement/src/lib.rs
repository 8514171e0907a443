//! A bulk disbursement envelope as the paying agency, the SDK, the wire
//! layer and the engine all see it: its header, its items, whom each item
//! pays, and the limits every side checks.
//!
//! The engine journals these types (postcard, field order matters): a
//! change of field or order here is a change of the journal format.

use ponte_directory::keys::Key;
use ponte_domain::{Account, Amount, ParticipantId};

/// Most items in one envelope.
pub const ENVELOPE_ITEMS_MAX: u32 = 1_000_000;
/// Most items in one add-items command (and so in one journal event).
pub const ENVELOPE_CHUNK_ITEMS_MAX: usize = 8_192;
pub const REFERENCE_LEN_MAX: usize = 35;
pub const PROGRAMME_LEN_MAX: usize = 70;
pub const DISBURSEMENT_ID_LEN_MAX: usize = 35;
pub const NARRATIVE_LEN_MAX: usize = 140;
/// Most item outcomes in one page.
pub const ITEMS_PAGE_MAX: u32 = 10_000;

/// Whom an item pays: a directory key (resolved when it is paid) or an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Beneficiary {
    Key(Key),
    Account(Account),
}

/// One payment of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeItem {
    /// The agency's own id of this payment; paid at most once, ever.
    pub disbursement_id: String,
    pub beneficiary: Beneficiary,
    pub amount: Amount,
    pub narrative: String,
}

/// What an envelope declares before its items: who pays, from which
/// account, and the control totals its items must add up to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeHeader {
    /// The paying agency (a participant): the caller that uploads it.
    pub agency: ParticipantId,
    /// The agency's reference of this envelope; unique per agency.
    pub reference: String,
    pub programme: String,
    /// The agency's payment cycle (e.g. "2026-12"), for its reports.
    pub cycle_reference: String,
    /// ISO 4217 code; must be the switch's currency.
    pub currency: String,
    /// The agency's account the money leaves from.
    pub paying_account: Account,
    pub control_count: u32,
    pub control_total: Amount,
}

fn check_text(what: &str, value: &str, max: usize, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err(format!("{what} is required"));
    }
    if value.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} has control characters"));
    }
    Ok(())
}

/// Checks the header's free texts (reference, programme, cycle reference).
pub fn check_header_texts(header: &EnvelopeHeader) -> Result<(), String> {
    check_text("reference", &header.reference, REFERENCE_LEN_MAX, true)?;
    check_text("programme", &header.programme, PROGRAMME_LEN_MAX, false)?;
    check_text("cycle reference", &header.cycle_reference, REFERENCE_LEN_MAX, false)
}

/// Checks one item on its own (bounds, positive amount).
pub fn check_item(item: &EnvelopeItem) -> Result<(), String> {
    check_text("disbursement id", &item.disbursement_id, DISBURSEMENT_ID_LEN_MAX, true)?;
    check_text("narrative", &item.narrative, NARRATIVE_LEN_MAX, false)?;
    if item.amount <= Amount::ZERO {
        return Err("the amount must be greater than zero".into());
    }
    if let Beneficiary::Account(account) = &item.beneficiary
        && account.participant.code() == 0
    {
        return Err("the beneficiary account has no participant".into());
    }
    Ok(())
}
