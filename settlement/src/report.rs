//! Cycle reports for the central bank: JSON, CSV and an ISO 20022
//! camt.053-style XML statement, each carrying the same digest.
//!
//! The digest is SHA-256 over a canonical text of the cycle: a header line
//! (format, cycle, opening and closing times) and one line per settled
//! movement (`end-to-end id,payer,payee,amount,settled at ms`) in end-to-end
//! id order. Anyone holding the journal can recompute it; changing, adding or
//! dropping any movement changes it.

use crate::{Instruction, Movement, Netting, NettingError, net};
use ponte_domain::{CURRENCY, EndToEndId, TimestampMs};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Where a cycle is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CycleStatus {
    /// Settled payments are landing in it.
    Open,
    /// Cut: nothing more lands in it; awaiting the RTGS posting.
    Closed,
    /// The central bank confirmed the RTGS posting.
    Settled,
}

impl CycleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleStatus::Open => "OPEN",
            CycleStatus::Closed => "CLOSED",
            CycleStatus::Settled => "SETTLED",
        }
    }
}

/// A cycle's identity and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CycleHeader {
    pub id: u64,
    pub status: CycleStatus,
    pub opened_at: TimestampMs,
    pub closed_at: Option<TimestampMs>,
    pub settled_at: Option<TimestampMs>,
}

/// One movement as the report records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledMovement {
    pub id: EndToEndId,
    pub movement: Movement,
    pub settled_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub header: CycleHeader,
    pub netting: Netting,
    /// SHA-256 of the canonical cycle text, hex.
    pub digest: String,
}

/// Builds a cycle's report from its movements (any order).
pub fn build(header: CycleHeader, mut movements: Vec<SettledMovement>) -> Result<CycleReport, NettingError> {
    movements.sort_by_key(|m| m.id);
    let netting = net(movements.iter().map(|m| m.movement))?;
    let mut hasher = Sha256::new();
    let closed = header.closed_at.map_or_else(|| "-".to_owned(), |t| t.to_string());
    hasher.update(format!("ponte-cycle-v1,{},{},{}\n", header.id, header.opened_at, closed).as_bytes());
    for m in &movements {
        let line =
            format!("{},{},{},{},{}\n", m.id, m.movement.payer, m.movement.payee, m.movement.amount, m.settled_at);
        hasher.update(line.as_bytes());
    }
    let digest = hasher.finalize().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Ok(CycleReport { header, netting, digest })
}

fn iso(ms: TimestampMs) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

impl CycleReport {
    /// The same report with another status (for comparing a report taken
    /// before a confirmation with one taken after).
    pub fn clone_with_status(&self, status: CycleStatus, settled_at: Option<TimestampMs>) -> CycleReport {
        let mut report = self.clone();
        report.header.status = status;
        report.header.settled_at = settled_at;
        report
    }

    /// JSON: every amount a decimal string, `net_position` per participant.
    pub fn to_json(&self) -> String {
        let participants: Vec<serde_json::Value> = self
            .netting
            .totals
            .iter()
            .map(|t| {
                serde_json::json!({
                    "participant": t.participant.to_string(),
                    "sent_count": t.sent_count,
                    "sent_value": t.sent_value.to_string(),
                    "received_count": t.received_count,
                    "received_value": t.received_value.to_string(),
                    "net_position": t.net_position.to_string(),
                })
            })
            .collect();
        let instructions: Vec<serde_json::Value> = self
            .netting
            .instructions()
            .iter()
            .map(|i| match i {
                Instruction::Pay { participant, amount } => {
                    serde_json::json!({"participant": participant.to_string(), "direction": "PAY", "amount": amount.to_string()})
                }
                Instruction::Receive { participant, amount } => {
                    serde_json::json!({"participant": participant.to_string(), "direction": "RECEIVE", "amount": amount.to_string()})
                }
            })
            .collect();
        let h = &self.header;
        let report = serde_json::json!({
            "format": "ponte-cycle-report-v1",
            "cycle": h.id,
            "status": h.status.as_str(),
            "currency": CURRENCY,
            "opened_at": iso(h.opened_at),
            "closed_at": h.closed_at.map(iso),
            "settled_at": h.settled_at.map(iso),
            "movements": self.netting.movements,
            "gross_value": self.netting.gross_value.to_string(),
            "participants": participants,
            "settlement_instructions": instructions,
            "digest_sha256": self.digest,
        });
        serde_json::to_string_pretty(&report).expect("JSON values serialize")
    }

    /// CSV: one line per participant, then the digest.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("participant,sent_count,sent_value,received_count,received_value,net_position\n");
        for t in &self.netting.totals {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{}",
                t.participant, t.sent_count, t.sent_value, t.received_count, t.received_value, t.net_position
            );
        }
        let _ =
            writeln!(csv, "# cycle {} {} digest_sha256 {}", self.header.id, self.header.status.as_str(), self.digest);
        csv
    }

    /// An ISO 20022 camt.053-style statement: one `Stmt` per participant
    /// with its closing balance (the net position) and entry totals.
    pub fn to_camt053(&self) -> String {
        let h = &self.header;
        let created = iso(h.closed_at.unwrap_or(h.opened_at));
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\n<BkToCstmrStmt>\n");
        let _ = writeln!(xml, "<GrpHdr><MsgId>PONTE-CYCLE-{}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>", h.id);
        for t in &self.netting.totals {
            let (indicator, balance) = if t.net_position.is_negative() {
                ("DBIT", t.net_position.checked_neg().expect("in range"))
            } else {
                ("CRDT", t.net_position)
            };
            let _ = writeln!(
                xml,
                "<Stmt><Id>PONTE-CYCLE-{id}-{p}</Id><CreDtTm>{created}</CreDtTm>\
                 <Acct><Id><Othr><Id>{p}</Id></Othr></Id><Ccy>{ccy}</Ccy></Acct>\
                 <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"{ccy}\">{balance}</Amt>\
                 <CdtDbtInd>{indicator}</CdtDbtInd><Dt><DtTm>{created}</DtTm></Dt></Bal>\
                 <TxsSummry><TtlCdtNtries><NbOfNtries>{rc}</NbOfNtries><Sum>{rv}</Sum></TtlCdtNtries>\
                 <TtlDbtNtries><NbOfNtries>{sc}</NbOfNtries><Sum>{sv}</Sum></TtlDbtNtries></TxsSummry>\
                 <AddtlStmtInf>digest-sha256:{digest}</AddtlStmtInf></Stmt>",
                id = h.id,
                p = t.participant,
                ccy = CURRENCY,
                rc = t.received_count,
                rv = t.received_value,
                sc = t.sent_count,
                sv = t.sent_value,
                digest = self.digest,
            );
        }
        xml.push_str("</BkToCstmrStmt>\n</Document>\n");
        xml
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ponte_domain::{Amount, IdKind, ParticipantId};

    fn pid(code: u32) -> ParticipantId {
        ParticipantId::new(code).unwrap()
    }

    fn movement(n: u64, payer: u32, payee: u32, minor: i64) -> SettledMovement {
        let suffix = format!("{n:011}");
        SettledMovement {
            id: EndToEndId::from_parts(
                IdKind::Payment,
                pid(payer),
                1_795_730_100_000,
                suffix.as_bytes().try_into().unwrap(),
            ),
            movement: Movement { payer: pid(payer), payee: pid(payee), amount: Amount::from_minor(minor) },
            settled_at: 1_795_730_100_000 + n as i64,
        }
    }

    fn sample() -> CycleReport {
        let header = CycleHeader {
            id: 7,
            status: CycleStatus::Closed,
            opened_at: 1_795_730_000_000,
            closed_at: Some(1_795_730_200_000),
            settled_at: None,
        };
        build(
            header,
            vec![
                movement(2, 10000002, 10000001, 30_00),
                movement(1, 10000001, 10000002, 100_00),
                movement(3, 10000003, 10000001, 5_55),
            ],
        )
        .unwrap()
    }

    /// Golden files: the formats are a contract with the central bank.
    #[test]
    fn golden_reports() {
        let report = sample();
        let check = |name: &str, actual: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
            if std::env::var_os("PONTE_BLESS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, actual).unwrap();
            }
            let expected = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("missing golden file {name}; run with PONTE_BLESS=1"));
            assert_eq!(actual, expected, "{name} changed; if intended, re-run with PONTE_BLESS=1 and review the diff");
        };
        check("cycle-7.json", &report.to_json());
        check("cycle-7.csv", &report.to_csv());
        check("cycle-7.camt053.xml", &report.to_camt053());
    }

    #[test]
    fn digest_changes_with_any_movement_and_not_with_order() {
        let a = sample();
        let header = a.header;
        let reordered = build(
            header,
            vec![
                movement(3, 10000003, 10000001, 5_55),
                movement(1, 10000001, 10000002, 100_00),
                movement(2, 10000002, 10000001, 30_00),
            ],
        )
        .unwrap();
        assert_eq!(a.digest, reordered.digest);
        let tampered = build(
            header,
            vec![
                movement(2, 10000002, 10000001, 30_01),
                movement(1, 10000001, 10000002, 100_00),
                movement(3, 10000003, 10000001, 5_55),
            ],
        )
        .unwrap();
        assert_ne!(a.digest, tampered.digest);
        let dropped =
            build(header, vec![movement(1, 10000001, 10000002, 100_00), movement(3, 10000003, 10000001, 5_55)])
                .unwrap();
        assert_ne!(a.digest, dropped.digest);
    }

    #[test]
    fn the_statement_is_well_formed_xml() {
        let xml = sample().to_camt053();
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut depth = 0_i32;
        let mut statements = 0;
        loop {
            match reader.read_event().expect("well-formed XML") {
                quick_xml::events::Event::Start(e) => {
                    depth += 1;
                    if e.name().as_ref() == "Stmt" {
                        statements += 1;
                    }
                }
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
        assert_eq!(statements, 3);
    }

    #[test]
    fn json_net_positions_sum_to_zero() {
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        let sum: Amount = json["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Amount::parse_signed(p["net_position"].as_str().unwrap()).unwrap())
            .fold(Amount::ZERO, |a, b| a.checked_add(b).unwrap());
        assert_eq!(sum, Amount::ZERO);
    }
}
