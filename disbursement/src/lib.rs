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

/// The text that opens an envelope digest: which scheme it follows.
pub const DIGEST_SCHEME: &str = "ponte-envelope-digest-v1";

/// An envelope's content digest, as `EnvelopeStatus.digest` carries it
/// (32 lowercase hex characters) and `ponte.proto` specifies it byte for
/// byte: the first 16 bytes of the SHA-256 of a sequence of text fields,
/// each written as its UTF-8 length (4 bytes, big-endian) then its bytes:
/// [`DIGEST_SCHEME`]; the header's agency code, reference, programme,
/// cycle reference, paying account, control count (decimal), control total
/// (the amount's text, e.g. "150.00") and currency; then for each item in
/// upload order its disbursement id, beneficiary, amount and narrative. An
/// account is `PARTICIPANT/BRANCH/NUMBER/TYPE` (e.g.
/// `10000001/0001/1234/CHECKING`), a beneficiary `account/` and an account,
/// or `key/` with the key type's wire name, `/`, and the key in canonical
/// form (e.g. `key/PHONE/+5561988880000`).
pub fn digest(header: &EnvelopeHeader, items: &[EnvelopeItem]) -> u128 {
    use sha2::{Digest, Sha256};
    fn field(hasher: &mut Sha256, text: &str) {
        let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
        hasher.update(length.to_be_bytes());
        hasher.update(text.as_bytes());
    }
    fn account(a: &Account) -> String {
        format!("{}/{}/{}/{}", a.participant, a.branch_text(), a.number(), a.kind.as_str())
    }
    let mut hasher = Sha256::new();
    field(&mut hasher, DIGEST_SCHEME);
    field(&mut hasher, &header.agency.to_string());
    field(&mut hasher, &header.reference);
    field(&mut hasher, &header.programme);
    field(&mut hasher, &header.cycle_reference);
    field(&mut hasher, &account(&header.paying_account));
    field(&mut hasher, &header.control_count.to_string());
    field(&mut hasher, &header.control_total.to_string());
    field(&mut hasher, &header.currency);
    for item in items {
        field(&mut hasher, &item.disbursement_id);
        let beneficiary = match &item.beneficiary {
            Beneficiary::Key(key) => format!("key/{}/{}", key.kind().as_str(), key.value()),
            Beneficiary::Account(a) => format!("account/{}", account(a)),
        };
        field(&mut hasher, &beneficiary);
        field(&mut hasher, &item.amount.to_string());
        field(&mut hasher, &item.narrative);
    }
    let digest = hasher.finalize();
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"))
}
