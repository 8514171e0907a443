//! Bulk disbursement: a government paying agency pays many beneficiaries in
//! one envelope, then follows its progress and fetches the report.
//!
//! ```no_run
//! # async fn run(client: ponte_sdk::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use ponte_sdk::disbursement::{EnvelopeHeader, read_csv};
//! let items = read_csv(&client.country(), &std::fs::read_to_string("beneficiaries.csv")?)
//!     .map_err(|problems| format!("{} bad lines, first: {}", problems.len(), problems[0]))?;
//! let header = EnvelopeHeader {
//!     agency: client.participant(),
//!     reference: "BOLSA-2026-12".into(),
//!     programme: "Bolsa Família".into(),
//!     cycle_reference: "2026-12".into(),
//!     currency: "BRL".into(),
//!     paying_account: "10000009/1/1".parse::<ponte_sdk::disbursement::AccountText>()?.0,
//!     control_count: items.len() as u32,
//!     control_total: items.iter().map(|i| i.amount).try_fold(ponte_sdk::Amount::ZERO, |a, b| a.checked_add(b)).unwrap(),
//! };
//! let status = client.submit_envelope(&header, items).await?;    // accepted whole, or an error
//! let report = client.envelope_report(&header.reference).await?;  // every item's outcome
//! std::fs::write("report.csv", report.to_csv())?;
//! # Ok(()) }
//! ```
//!
//! # The CSV file
//! A header line, then one item per line:
//! ```text
//! disbursement_id,beneficiary_type,beneficiary,amount,narrative
//! B-000001,phone,+5561988880000,600.00,Bolsa dezembro
//! B-000002,person_id,529.982.247-25,600.00,Bolsa dezembro
//! B-000003,account,10000002/1/123456,450.00,Bolsa dezembro
//! ```
//! `beneficiary_type` is `phone`, `email`, `person_id`, `business_id`,
//! `random` (a key) or `account` (`PARTICIPANT/BRANCH/NUMBER[/TYPE]`, TYPE
//! one of checking, savings, payment, salary). Every bad line is reported
//! with its number; nothing is sent unless the whole file is good.

use crate::error::Error;
use crate::wire;
use crate::{Client, KeyType};
use ponte_directory::keys::{Country, CountryProfile, parse_existing};
use ponte_domain::{Account, AccountType, Amount, ParticipantId, ReasonCode};
use ponte_proto::v1 as pb;

/// Items per upload message (the switch takes at most 10,000).
pub const UPLOAD_BATCH_ITEMS: usize = 5_000;
/// Items per page when fetching outcomes (the switch's maximum).
pub const ITEMS_PAGE: u32 = 10_000;
/// Lines a CSV file may hold (the switch takes at most 1,000,000 items).
pub const CSV_ITEMS_MAX: usize = 1_000_000;

pub use ponte_disbursement::{
    Beneficiary, DISBURSEMENT_ID_LEN_MAX, ENVELOPE_ITEMS_MAX, EnvelopeHeader, EnvelopeItem, NARRATIVE_LEN_MAX,
    PROGRAMME_LEN_MAX, REFERENCE_LEN_MAX,
};

/// An envelope's progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvelopeStatus {
    pub agency: String,
    pub reference: String,
    pub programme: String,
    pub cycle_reference: String,
    pub control_count: u32,
    pub control_total: String,
    pub currency: String,
    pub received: u32,
    pub paid_count: u32,
    pub paid_value: String,
    pub failed_count: u32,
    pub failed_value: String,
    pub in_progress: u32,
    pub sealed: bool,
    pub complete: bool,
    pub digest: String,
}

impl EnvelopeStatus {
    /// Items paid or failed.
    pub fn done(&self) -> u32 {
        self.paid_count + self.failed_count
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Waiting,
    InProgress,
    Paid,
    Failed,
}

/// One item's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemOutcome {
    pub index: u32,
    pub disbursement_id: String,
    pub beneficiary_type: String,
    pub beneficiary: String,
    pub amount: String,
    pub state: ItemState,
    /// ISO 20022-style code when failed (e.g. "BE23", "DUPL").
    pub reason: String,
    pub reason_text: String,
    pub end_to_end_id: String,
    /// The account paid, `PARTICIPANT/BRANCH/NUMBER`.
    pub payee: String,
    pub settled_at_ms: i64,
}

/// Every item of an envelope and its totals.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub envelope: EnvelopeStatus,
    pub items: Vec<ItemOutcome>,
}

impl Report {
    /// One line per item, with a header line.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        for item in &self.items {
            writer.serialize(item).expect("writing CSV to memory cannot fail");
        }
        String::from_utf8(writer.into_inner().expect("in memory")).expect("CSV of UTF-8 fields is UTF-8")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }
}

/// A problem in a CSV file, with its line number (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvProblem {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for CsvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// An account written `PARTICIPANT/BRANCH/NUMBER[/TYPE]`.
#[derive(Debug, Clone, Copy)]
pub struct AccountText(pub Account);

impl std::str::FromStr for AccountText {
    type Err = String;
    fn from_str(text: &str) -> Result<AccountText, String> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let (participant, branch, number, kind) = match parts.as_slice() {
            [p, b, n] => (p, b, n, "checking"),
            [p, b, n, t] => (p, b, n, *t),
            _ => return Err("an account is PARTICIPANT/BRANCH/NUMBER[/TYPE]".into()),
        };
        let participant: ParticipantId = participant.parse().map_err(|e| format!("participant: {e}"))?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "checking" => AccountType::Checking,
            "savings" => AccountType::Savings,
            "payment" => AccountType::Payment,
            "salary" => AccountType::Salary,
            other => return Err(format!("unknown account type {other:?}")),
        };
        Account::new(participant, branch, number, kind).map(AccountText).map_err(|e| e.to_string())
    }
}

fn account_text(account: &Account) -> String {
    format!("{}/{}/{}", account.participant, account.branch_text(), account.number())
}

fn key_type_of(text: &str) -> Option<KeyType> {
    KeyType::from_name(text)
}

/// Reads a disbursement CSV file (see the module docs). Returns every item,
/// or every problem found (at most 100 are listed), each with its line.
pub fn read_csv(country: &dyn CountryProfile, text: &str) -> Result<Vec<EnvelopeItem>, Vec<CsvProblem>> {
    const PROBLEMS_MAX: usize = 100;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let mut problems = Vec::new();
    let expected = ["disbursement_id", "beneficiary_type", "beneficiary", "amount", "narrative"];
    match reader.headers() {
        Ok(headers) if headers.iter().map(str::trim).eq(expected) => {}
        Ok(_) => {
            return Err(vec![CsvProblem {
                line: 1,
                reason: format!("the header line must be {}", expected.join(",")),
            }]);
        }
        Err(e) => return Err(vec![CsvProblem { line: 1, reason: e.to_string() }]),
    }
    let mut items = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(CsvProblem { line, reason: e.to_string() });
                if problems.len() >= PROBLEMS_MAX {
                    break;
                }
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if items.len() >= CSV_ITEMS_MAX {
            problems.push(CsvProblem { line, reason: format!("more than {CSV_ITEMS_MAX} items") });
            break;
        }
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let item = (|| {
            let beneficiary = match field(1).to_ascii_lowercase().as_str() {
                "account" => Beneficiary::Account(field(2).parse::<AccountText>()?.0),
                kind => {
                    let kind = key_type_of(kind).ok_or_else(|| format!("unknown beneficiary_type {kind:?}"))?;
                    // The key's value is personal data: not repeated in the message.
                    Beneficiary::Key(parse_existing(country, kind, field(2)).map_err(|e| format!("beneficiary: {e}"))?)
                }
            };
            let amount = Amount::parse_positive(field(3)).map_err(|e| format!("amount: {e}"))?;
            let disbursement_id = field(0).to_string();
            if disbursement_id.is_empty() {
                return Err("disbursement_id is required".to_string());
            }
            Ok(EnvelopeItem { disbursement_id, beneficiary, amount, narrative: field(4).to_string() })
        })();
        match item {
            Ok(item) => items.push(item),
            Err(reason) => {
                problems.push(CsvProblem { line, reason });
                if problems.len() >= PROBLEMS_MAX {
                    break;
                }
            }
        }
    }
    if problems.is_empty() { Ok(items) } else { Err(problems) }
}

fn status_from_wire(m: pb::EnvelopeStatus) -> EnvelopeStatus {
    let header = m.header.unwrap_or_default();
    EnvelopeStatus {
        agency: m.agency,
        reference: header.reference,
        programme: header.programme,
        cycle_reference: header.cycle_reference,
        control_count: header.control_count,
        control_total: header.control_total,
        currency: header.currency,
        received: m.received,
        paid_count: m.paid_count,
        paid_value: m.paid_value,
        failed_count: m.failed_count,
        failed_value: m.failed_value,
        in_progress: m.in_progress,
        sealed: m.sealed,
        complete: m.complete,
        digest: m.digest,
    }
}

fn outcome_from_wire(country: Country, m: pb::EnvelopeItemOutcome) -> Result<ItemOutcome, Error> {
    let item = m.item.unwrap_or_default();
    let (beneficiary_type, beneficiary) = match &item.beneficiary {
        Some(pb::disbursement_item::Beneficiary::Key(key)) => {
            let key = wire::key_from_wire(&country, "key", Some(key)).map_err(|e| Error::Protocol(e.to_string()))?;
            (key.kind().as_str().to_ascii_lowercase(), key.value().to_string())
        }
        Some(pb::disbursement_item::Beneficiary::Account(a)) => {
            let a = wire::account_from_wire("account", Some(a)).map_err(|e| Error::Protocol(e.to_string()))?;
            ("account".to_string(), account_text(&a))
        }
        None => (String::new(), String::new()),
    };
    let state = match pb::ItemState::try_from(m.state) {
        Ok(pb::ItemState::Waiting) => ItemState::Waiting,
        Ok(pb::ItemState::InProgress) => ItemState::InProgress,
        Ok(pb::ItemState::Paid) => ItemState::Paid,
        Ok(pb::ItemState::Failed) => ItemState::Failed,
        _ => return Err(Error::Protocol(format!("item {}: unknown state {}", m.index, m.state))),
    };
    let reason: Option<ReasonCode> = m
        .reason
        .as_ref()
        .map(|r| wire::reason_from_wire(Some(r)))
        .transpose()
        .map_err(|e| Error::Protocol(e.to_string()))?;
    let payee = match m.payee.as_ref() {
        Some(a) => {
            account_text(&wire::account_from_wire("payee", Some(a)).map_err(|e| Error::Protocol(e.to_string()))?)
        }
        None => String::new(),
    };
    Ok(ItemOutcome {
        index: m.index,
        disbursement_id: item.disbursement_id,
        beneficiary_type,
        beneficiary,
        amount: item.amount,
        state,
        reason: reason.map(|r| r.code().to_string()).unwrap_or_default(),
        reason_text: reason.map(|r| r.description().to_string()).unwrap_or_default(),
        end_to_end_id: m.end_to_end_id,
        payee,
        settled_at_ms: m.settled_at_ms,
    })
}

impl Client {
    /// Uploads an envelope as a stream and waits until the switch has
    /// accepted it whole (it is then being paid) or refused it whole.
    /// Sending the same envelope again returns its status; nobody is paid twice.
    /// `header.agency` must be this client's participant: the switch takes
    /// the agency from the caller's certificate.
    pub async fn submit_envelope(
        &self,
        header: &EnvelopeHeader,
        items: Vec<EnvelopeItem>,
    ) -> Result<EnvelopeStatus, Error> {
        if header.agency != self.participant() {
            return Err(Error::InvalidArgument(format!(
                "the envelope's agency {} is not this client's participant {}",
                header.agency,
                self.participant()
            )));
        }
        let wire_header = wire::header_to_wire(header);
        // Messages are built as the stream is sent: a million items never
        // sit in memory twice.
        let mut header = Some(wire_header);
        let mut items = items.into_iter();
        let messages = futures::stream::iter(std::iter::from_fn(move || {
            let batch: Vec<pb::DisbursementItem> =
                items.by_ref().take(UPLOAD_BATCH_ITEMS).map(|i| wire::item_to_wire(&i)).collect();
            if batch.is_empty() && header.is_none() {
                return None;
            }
            Some(pb::EnvelopeUpload { header: header.take(), items: batch })
        }));
        let status = self.disbursements.clone().submit_envelope(messages).await?.into_inner();
        Ok(status_from_wire(status))
    }

    /// An envelope's progress (`reference` of this participant's envelopes).
    pub async fn envelope(&self, reference: &str) -> Result<EnvelopeStatus, Error> {
        let request = pb::GetEnvelopeRequest { agency: String::new(), reference: reference.into() };
        Ok(status_from_wire(self.disbursements.clone().get_envelope(request).await?.into_inner()))
    }

    /// A page of item outcomes, from item `offset` (at most [`ITEMS_PAGE`]).
    pub async fn envelope_items(&self, reference: &str, offset: u32, limit: u32) -> Result<Vec<ItemOutcome>, Error> {
        let request =
            pb::ListEnvelopeItemsRequest { agency: String::new(), reference: reference.into(), offset, limit };
        let page = self.disbursements.clone().list_envelope_items(request).await?.into_inner();
        page.items.into_iter().map(|m| outcome_from_wire(self.country(), m)).collect()
    }

    /// The whole report: the envelope's totals and every item's outcome.
    pub async fn envelope_report(&self, reference: &str) -> Result<Report, Error> {
        let envelope = self.envelope(reference).await?;
        let mut items = Vec::with_capacity(envelope.received as usize);
        while items.len() < envelope.received as usize {
            let page = self.envelope_items(reference, items.len() as u32, ITEMS_PAGE).await?;
            if page.is_empty() {
                break;
            }
            items.extend(page);
        }
        Ok(Report { envelope, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_reads_into_items() {
        let text = "disbursement_id,beneficiary_type,beneficiary,amount,narrative\n\
                    B1,phone,+5561988880000,600.00,Bolsa dezembro\n\
                    B2,person_id,529.982.247-25,600.5,\n\
                    B3,account,10000002/1/123456/savings,450.00,\"Bolsa, dezembro\"\n";
        let items = read_csv(&Country::DEFAULT, text).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].amount, Amount::from_minor(600_50));
        assert!(matches!(&items[1].beneficiary, Beneficiary::Key(k) if k.value() == "52998224725"));
        let Beneficiary::Account(a) = items[2].beneficiary else { panic!() };
        assert_eq!((a.number(), a.kind), ("123456", AccountType::Savings));
        assert_eq!(items[2].narrative, "Bolsa, dezembro");
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number_and_no_personal_data() {
        let text = "disbursement_id,beneficiary_type,beneficiary,amount,narrative\n\
                    B1,phone,+5561988880000,600.00,ok\n\
                    B2,phone,12345,600.00,bad phone\n\
                    B3,person_id,111.111.111-12,1.00,bad check digits\n\
                    B4,account,10000002/1,1.00,short account\n\
                    B5,phone,+5561988880001,-3.00,negative\n\
                    B6,pigeon,x,1.00,unknown type\n\
                    ,phone,+5561988880002,1.00,no id\n\
                    B8,phone,+5561988880003,1.00\n";
        let problems = read_csv(&Country::DEFAULT, text).unwrap_err();
        let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9], "{problems:?}");
        for p in &problems {
            assert!(!p.reason.contains("111.111.111-12") && !p.reason.contains("12345"), "{p}");
        }
        assert!(read_csv(&Country::DEFAULT, "id,amount\nB1,1.00\n").unwrap_err()[0].reason.contains("header line"));
    }
}
