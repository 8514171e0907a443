//! Cycle reports for the central bank: JSON, CSV and an ISO 20022
//! camt.053-style XML statement, each carrying the same digest.
//!
//! The digest is SHA-256 over a canonical text of the cycle: a header line
//! (format, cycle, opening and closing times) and one line per settled
//! movement (`end-to-end id,payer,payee,amount,settled at ms`) in end-to-end
//! id order. Anyone holding the journal can recompute it; changing, adding or
//! dropping any movement changes it.

use crate::{Instruction, Movement, Netting, NettingError, net};
use ponte_domain::{Amount, CURRENCY, EndToEndId, ParticipantId, TimestampMs};
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

    /// The cycle as an ISO 20022 `camt.053.001.08` statement
    /// (BankToCustomerStatement), valid against the official schema for
    /// every cycle, empty ones included (docs/ISO20022.md "Cycle statement"):
    ///
    /// - one `Stmt` for the cycle as a whole, always present (a quiet hour
    ///   still gives a valid file): its entries are every movement, its
    ///   balance zero, as the positions net to zero;
    /// - one `Stmt` per participant with movements: opening balance zero
    ///   (every cycle starts from zero), closing balance the net position
    ///   (`CLBD` once the cycle is closed, `ITBD` while it is open), the
    ///   count and sum of its credits and debits, and the net.
    ///
    /// It carries no `Ntry` per movement: this is the central bank's
    /// settlement statement of every participant at once, and a busy
    /// cycle's movements (millions) would make it gigabytes in one answer.
    /// A participant's movements are read by pages (`CycleTransfers`).
    pub fn to_camt053(&self) -> String {
        self.camt053(None)
    }

    /// One participant's statement of the cycle (its `Stmt` only, with zero
    /// balances when it had no movement), as the ISO 20022 gateway gives it
    /// to that participant: the same document otherwise, and the same digest
    /// of the whole cycle, to check against the central bank's report.
    pub fn to_camt053_for(&self, participant: ParticipantId) -> String {
        self.camt053(Some(participant))
    }

    fn camt053(&self, only: Option<ParticipantId>) -> String {
        let mut w = quick_xml::Writer::new_with_indent(Vec::with_capacity(1024), b' ', 1);
        self.write_camt053(&mut w, only).expect("writing XML into memory cannot fail");
        let mut xml = String::from_utf8(w.into_inner()).expect("the writer only writes UTF-8");
        xml.push('\n');
        xml
    }

    fn write_camt053(&self, w: &mut quick_xml::Writer<Vec<u8>>, only: Option<ParticipantId>) -> std::io::Result<()> {
        use quick_xml::events::{BytesDecl, Event};
        let h = &self.header;
        let created = iso(h.closed_at.or(h.settled_at).unwrap_or(h.opened_at));
        let opened = iso(h.opened_at);
        let until = created.clone();
        let closing = if h.status == CycleStatus::Open { "ITBD" } else { "CLBD" };
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("Document")
            .with_attribute(("xmlns", "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"))
            .write_inner_content(|w| {
                w.create_element("BkToCstmrStmt").write_inner_content(|w| {
                    w.create_element("GrpHdr").write_inner_content(|w| {
                        leaf(w, "MsgId", &format!("PONTE-CYCLE-{}", h.id))?;
                        leaf(w, "CreDtTm", &created)?;
                        w.create_element("MsgPgntn").write_inner_content(|w| {
                            leaf(w, "PgNb", "1")?;
                            leaf(w, "LastPgInd", "true")
                        })?;
                        leaf(
                            w,
                            "AddtlInf",
                            &format!(
                                "Ponte settlement cycle {} {}; digest-sha256:{}",
                                h.id,
                                h.status.as_str(),
                                self.digest
                            ),
                        )
                    })?;
                    let period = Period { opened: &opened, until: &until, created: &created };
                    let gross = self.netting.gross_value;
                    if only.is_none() {
                        statement(
                            w,
                            &period,
                            &StatementLines {
                                id: format!("PONTE-CYCLE-{}", h.id),
                                account: "PONTE-CYCLE-NETTING",
                                name: "Ponte cycle netting: every movement of the cycle",
                                closing,
                                net: Amount::ZERO,
                                sides: None,
                                entries: (self.netting.movements, gross),
                                digest: &self.digest,
                            },
                        )?;
                    }
                    let quiet = only.filter(|p| !self.netting.totals.iter().any(|t| t.participant == *p)).map(|p| {
                        crate::Totals {
                            participant: p,
                            sent_count: 0,
                            sent_value: Amount::ZERO,
                            received_count: 0,
                            received_value: Amount::ZERO,
                            net_position: Amount::ZERO,
                        }
                    });
                    let totals = self.netting.totals.iter().chain(quiet.iter());
                    for t in totals.filter(|t| only.is_none_or(|p| p == t.participant)) {
                        let participant = t.participant.to_string();
                        let entries = t.sent_count + t.received_count;
                        let sum = t.sent_value.checked_add(t.received_value).expect("a cycle's sums are in range");
                        statement(
                            w,
                            &period,
                            &StatementLines {
                                id: format!("PONTE-{}-{participant}", h.id),
                                account: &participant,
                                name: "Ponte settlement position",
                                closing,
                                net: t.net_position,
                                sides: Some(((t.received_count, t.received_value), (t.sent_count, t.sent_value))),
                                entries: (entries, sum),
                                digest: &self.digest,
                            },
                        )?;
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    }
}

/// The times every statement of one cycle shares.
struct Period<'a> {
    opened: &'a str,
    until: &'a str,
    created: &'a str,
}

/// What one `Stmt` says.
struct StatementLines<'a> {
    id: String,
    account: &'a str,
    name: &'a str,
    /// `CLBD` (closing booked) or `ITBD` (interim booked, the cycle still open).
    closing: &'static str,
    net: Amount,
    /// Credits and debits apart: (count, sum) each. The cycle's own
    /// statement gives only the total, as each of its movements is both.
    sides: Option<((u64, Amount), (u64, Amount))>,
    entries: (u64, Amount),
    digest: &'a str,
}

fn leaf(w: &mut quick_xml::Writer<Vec<u8>>, name: &str, text: &str) -> std::io::Result<()> {
    w.create_element(name).write_text_content(quick_xml::events::BytesText::new(text))?;
    Ok(())
}

/// `Amt` with its currency: never negative, the direction is `CdtDbtInd`.
fn amount(w: &mut quick_xml::Writer<Vec<u8>>, name: &str, value: Amount) -> std::io::Result<()> {
    w.create_element(name)
        .with_attribute(("Ccy", CURRENCY))
        .write_text_content(quick_xml::events::BytesText::new(&value.to_string()))?;
    Ok(())
}

fn direction(net: Amount) -> (Amount, &'static str) {
    if net.is_negative() { (net.checked_neg().expect("a negated position is in range"), "DBIT") } else { (net, "CRDT") }
}

fn balance(w: &mut quick_xml::Writer<Vec<u8>>, code: &str, value: Amount, at: &str) -> std::io::Result<()> {
    let (abs, indicator) = direction(value);
    w.create_element("Bal").write_inner_content(|w| {
        w.create_element("Tp").write_inner_content(|w| {
            w.create_element("CdOrPrtry").write_inner_content(|w| leaf(w, "Cd", code))?;
            Ok(())
        })?;
        amount(w, "Amt", abs)?;
        leaf(w, "CdtDbtInd", indicator)?;
        w.create_element("Dt").write_inner_content(|w| leaf(w, "DtTm", at))?;
        Ok(())
    })?;
    Ok(())
}

fn statement(w: &mut quick_xml::Writer<Vec<u8>>, period: &Period<'_>, s: &StatementLines<'_>) -> std::io::Result<()> {
    let count_and_sum = |w: &mut quick_xml::Writer<Vec<u8>>, name: &str, (count, sum): (u64, Amount)| {
        w.create_element(name).write_inner_content(|w| {
            leaf(w, "NbOfNtries", &count.to_string())?;
            leaf(w, "Sum", &sum.to_string())
        })?;
        Ok::<_, std::io::Error>(())
    };
    w.create_element("Stmt").write_inner_content(|w| {
        leaf(w, "Id", &s.id)?;
        w.create_element("StmtPgntn").write_inner_content(|w| {
            leaf(w, "PgNb", "1")?;
            leaf(w, "LastPgInd", "true")
        })?;
        leaf(w, "CreDtTm", period.created)?;
        w.create_element("FrToDt").write_inner_content(|w| {
            leaf(w, "FrDtTm", period.opened)?;
            leaf(w, "ToDtTm", period.until)
        })?;
        w.create_element("Acct").write_inner_content(|w| {
            w.create_element("Id").write_inner_content(|w| {
                w.create_element("Othr").write_inner_content(|w| {
                    leaf(w, "Id", s.account)?;
                    w.create_element("SchmeNm").write_inner_content(|w| leaf(w, "Prtry", "PONTE"))?;
                    Ok(())
                })?;
                Ok(())
            })?;
            leaf(w, "Ccy", CURRENCY)?;
            leaf(w, "Nm", s.name)
        })?;
        balance(w, "OPBD", Amount::ZERO, period.opened)?;
        balance(w, s.closing, s.net, period.until)?;
        w.create_element("TxsSummry").write_inner_content(|w| {
            w.create_element("TtlNtries").write_inner_content(|w| {
                leaf(w, "NbOfNtries", &s.entries.0.to_string())?;
                leaf(w, "Sum", &s.entries.1.to_string())?;
                let (abs, indicator) = direction(s.net);
                w.create_element("TtlNetNtry").write_inner_content(|w| {
                    leaf(w, "Amt", &abs.to_string())?;
                    leaf(w, "CdtDbtInd", indicator)
                })?;
                Ok(())
            })?;
            if let Some((credits, debits)) = s.sides {
                count_and_sum(w, "TtlCdtNtries", credits)?;
                count_and_sum(w, "TtlDbtNtries", debits)?;
            }
            Ok(())
        })?;
        leaf(w, "AddtlStmtInf", &format!("digest-sha256:{}", s.digest))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ponte_domain::{IdKind, ParticipantId};

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
        // The cycle's own statement and one per participant.
        assert_eq!(statements, 4);
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
