//! ISO 20022 ⇄ Ponte: what each element of Ponte's usage guideline means
//! (docs/ISO20022.md gives the same mapping as a table).
//!
//! Inbound transactions become the same `ponte.v1` requests a gRPC client
//! sends, and go through the same checks (`payments::payment_order`,
//! `payments::give_back`): the gateway adds no rule of its own to a
//! payment, only the reading of its XML.

use ponte_domain::{Account, AccountType, Amount, CURRENCY, EndToEndId, TimestampMs};
use ponte_iso20022::model::*;
use ponte_ledger::{Delivery, Outcome, Recall, RecallState, ReturnNotice};
use ponte_proto::v1 as pb;
use tonic::Status;

/// The text ISO's `NOTPROVIDED` convention puts where a value is unknown:
/// with a proxy (`CdtrAcct/Prxy`), the payee's account and agent are the
/// directory's to find.
pub const NOT_PROVIDED: &str = "NOTPROVIDED";

/// A transaction refused before it reached the engine: the ISO status
/// reason code and its explanation. Nothing of it was executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub text: String,
}

impl Refusal {
    fn new(code: &'static str, text: impl Into<String>) -> Refusal {
        Refusal { code, text: text.into() }
    }

    /// The ISO code for a request the shared checks refused, by the field
    /// their message names first.
    pub fn of_status(status: &Status) -> Refusal {
        let message = status.message();
        let code = [
            ("end_to_end_id", "FF08"),
            ("return_id", "FF08"),
            ("original_end_to_end_id", "FF08"),
            ("payer", "AC02"),
            ("participant ", "AC02"),
            ("payee.account", "AC03"),
            ("payee.key", "BE23"),
            ("amount", "AM12"),
            ("currency", "AM03"),
            ("reason", "CH16"),
        ]
        .into_iter()
        .find(|(field, _)| message.starts_with(field))
        .map_or(if status.code() == tonic::Code::ResourceExhausted { "AB09" } else { "CH16" }, |(_, code)| code);
        Refusal::new(code, message)
    }
}

/// The participant code an agent names (`FinInstnId/ClrSysMmbId/MmbId`).
pub fn agent_code(agent: &Agent) -> Option<&str> {
    agent.FinInstnId.ClrSysMmbId.as_ref().map(|id| id.MmbId.as_str())
}

pub fn agent(code: impl ToString) -> Agent {
    Agent {
        FinInstnId: FinInstnId {
            ClrSysMmbId: Some(ClrSysMmbId { ClrSysId: None, MmbId: code.to_string() }),
            Othr: None,
        },
    }
}

const ACCOUNT_TYPES: [(&str, pb::AccountType); 4] = [
    ("CACC", pb::AccountType::Checking),
    ("SVGS", pb::AccountType::Savings),
    ("TRAN", pb::AccountType::Payment),
    ("SLRY", pb::AccountType::Salary),
];

fn account_type_code(kind: AccountType) -> &'static str {
    match kind {
        AccountType::Checking => "CACC",
        AccountType::Savings => "SVGS",
        AccountType::Payment => "TRAN",
        AccountType::Salary => "SLRY",
    }
}

/// An account element: number in `Id/Othr/Id`, branch in `Id/Othr/Issr`,
/// type in `Tp/Cd` (CACC, SVGS, TRAN, SLRY).
fn account_from_iso(
    code: &'static str,
    what: &str,
    participant: &str,
    account: &CashAccount,
) -> Result<pb::Account, Refusal> {
    let kind = match &account.Tp {
        Some(CodeOrProprietary { Cd: Some(cd), Prtry: None }) => ACCOUNT_TYPES.iter().find(|(c, _)| c == cd),
        _ => None,
    }
    .ok_or_else(|| Refusal::new(code, format!("{what}/Tp/Cd: CACC, SVGS, TRAN or SLRY")))?;
    let branch = account
        .Id
        .Othr
        .Issr
        .as_deref()
        .ok_or_else(|| Refusal::new(code, format!("{what}/Id/Othr/Issr: the branch is required")))?;
    Ok(pb::Account {
        participant: participant.to_owned(),
        branch: branch.to_owned(),
        number: account.Id.Othr.Id.clone(),
        r#type: kind.1 as i32,
    })
}

pub fn account_to_iso(account: &Account) -> CashAccount {
    CashAccount {
        Id: AccountId { Othr: GenericAccountId { Id: account.number().to_owned(), Issr: Some(account.branch_text()) } },
        Tp: Some(CodeOrProprietary::code(account_type_code(account.kind))),
        Prxy: None,
    }
}

/// A proxy's type: `Cd` MBNO or TELE (phone), EMAL (email); or `Prtry`
/// with the key type's wire name (PERSON_ID, BUSINESS_ID, PHONE, EMAIL, RANDOM).
fn key_type(proxy: &Proxy) -> Option<pb::KeyType> {
    match proxy.Tp.as_ref()? {
        CodeOrProprietary { Cd: Some(cd), Prtry: None } => match cd.as_str() {
            "MBNO" | "TELE" => Some(pb::KeyType::Phone),
            "EMAL" => Some(pb::KeyType::Email),
            _ => None,
        },
        CodeOrProprietary { Cd: None, Prtry: Some(name) } => {
            pb::KeyType::from_str_name(&format!("KEY_TYPE_{name}")).filter(|kind| *kind != pb::KeyType::Unspecified)
        }
        _ => None,
    }
}

/// One `CdtTrfTxInf` as the `PaymentRequest` a gRPC client would send.
pub fn payment_request(tx: &CreditTransferTx) -> Result<pb::PaymentRequest, Refusal> {
    if tx.ChrgBr != "SLEV" {
        return Err(Refusal::new("CH16", "ChrgBr: SLEV (each side bears its own charges)"));
    }
    let payer_code = agent_code(&tx.DbtrAgt).unwrap_or_default();
    let payer =
        tx.DbtrAcct.as_ref().ok_or_else(|| Refusal::new("AC02", "DbtrAcct: the payer's account is required"))?;
    let payer = account_from_iso("AC02", "DbtrAcct", payer_code, payer)?;
    let creditor =
        tx.CdtrAcct.as_ref().ok_or_else(|| Refusal::new("AC03", "CdtrAcct: the payee's account or key is required"))?;
    let target = match &creditor.Prxy {
        Some(proxy) => {
            let agent_given = agent_code(&tx.CdtrAgt).is_some()
                || tx.CdtrAgt.FinInstnId.Othr.as_ref().is_some_and(|o| o.Id != NOT_PROVIDED);
            if creditor.Id.Othr.Id != NOT_PROVIDED || agent_given {
                return Err(Refusal::new(
                    "CH16",
                    "CdtrAcct/Prxy: a payment to a key gives NOTPROVIDED as the account (Id/Othr/Id) and agent \
                     (CdtrAgt/FinInstnId/Othr/Id); the directory finds them",
                ));
            }
            let kind = key_type(proxy).ok_or_else(|| {
                Refusal::new("BE23", "CdtrAcct/Prxy/Tp: Cd MBNO, TELE or EMAL, or Prtry with a Ponte key type")
            })?;
            pb::payee::Target::Key(pb::Key { r#type: kind as i32, value: proxy.Id.clone() })
        }
        None => {
            let payee_code = agent_code(&tx.CdtrAgt)
                .ok_or_else(|| Refusal::new("RC07", "CdtrAgt/FinInstnId/ClrSysMmbId/MmbId: the payee's participant"))?;
            pb::payee::Target::Account(account_from_iso("AC03", "CdtrAcct", payee_code, creditor)?)
        }
    };
    let remittance = match tx.RmtInf.as_ref().map(|r| r.Ustrd.as_slice()) {
        None | Some([]) => String::new(),
        Some([line]) => line.clone(),
        Some(_) => return Err(Refusal::new("CH16", "RmtInf/Ustrd: at most one line")),
    };
    Ok(pb::PaymentRequest {
        end_to_end_id: tx.PmtId.EndToEndId.clone(),
        payer: Some(payer),
        payee: Some(pb::Payee { target: Some(target) }),
        amount: tx.IntrBkSttlmAmt.value.trim().to_owned(),
        currency: tx.IntrBkSttlmAmt.Ccy.clone(),
        remittance,
        lookup_by: None,
    })
}

/// One `TxInf` of a pacs.004 as the `ReturnRequest` a gRPC client would send.
pub fn return_request(tx: &ReturnTx) -> Result<pb::ReturnRequest, Refusal> {
    let reason = match tx.RtrRsnInf.as_slice() {
        [ReturnReason { Rsn: Some(CodeOrProprietary { Cd: Some(code), Prtry: None }), .. }] => code.clone(),
        _ => return Err(Refusal::new("CH16", "RtrRsnInf: exactly one, with Rsn/Cd (MD06, FR01 or BE08)")),
    };
    if tx.RtrdIntrBkSttlmAmt.Ccy != CURRENCY {
        return Err(Refusal::new("AM03", format!("RtrdIntrBkSttlmAmt/@Ccy: this switch settles in {CURRENCY}")));
    }
    if tx.ChrgBr.as_deref().is_some_and(|c| c != "SLEV") {
        return Err(Refusal::new("CH16", "ChrgBr: SLEV (each side bears its own charges)"));
    }
    Ok(pb::ReturnRequest {
        return_id: tx.RtrId.clone().unwrap_or_default(),
        original_end_to_end_id: tx.OrgnlEndToEndId.clone().unwrap_or_default(),
        amount: tx.RtrdIntrBkSttlmAmt.value.trim().to_owned(),
        reason,
        remittance: String::new(),
        reason_code: 0,
    })
}

/// A payee's answer in a pacs.002: ACCP or ACSP accepts; RJCT refuses with
/// the reason in `StsRsnInf/Rsn/Cd`.
pub fn decision(tx: &TxStatus) -> Result<(EndToEndId, ponte_domain::Decision), String> {
    let id = tx.OrgnlEndToEndId.as_deref().ok_or("OrgnlEndToEndId is required")?;
    let id = EndToEndId::parse(id).map_err(|e| format!("OrgnlEndToEndId {id:?}: {e}"))?;
    let decision = match tx.TxSts.as_deref() {
        Some("ACCP" | "ACSP") => ponte_domain::Decision::Accept,
        Some("RJCT") => {
            let code = match tx.StsRsnInf.first().and_then(|r| r.Rsn.as_ref()) {
                Some(CodeOrProprietary { Cd: Some(code), Prtry: None }) => code,
                _ => return Err(format!("{id}: RJCT needs StsRsnInf/Rsn/Cd with a payee reason code (e.g. AC03)")),
            };
            // The same rule as the gRPC inbox (`decision_from_wire`).
            ponte_wire::decision_from_wire(pb::Decision::Reject as i32, code, 0)
                .map_err(|e| format!("{id}: StsRsnInf/Rsn/Cd {code:?}: {}", e.message))?
        }
        Some(other) => return Err(format!("{id}: TxSts {other:?}: ACCP or ACSP accepts, RJCT refuses")),
        None => return Err(format!("{id}: TxSts is required (ACCP, ACSP or RJCT)")),
    };
    Ok((id, decision))
}

pub fn amount(value: Amount) -> Amt {
    Amt { Ccy: CURRENCY.to_owned(), value: value.to_string() }
}

/// An ISO date-time in UTC with milliseconds.
pub fn date_time(ms: TimestampMs) -> String {
    use time::macros::format_description;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.format(&format).expect("a UTC time formats")
}

/// An ISO time of day in UTC with milliseconds (`ISOTime`).
fn time_of_day(ms: TimestampMs) -> String {
    date_time(ms).split_once('T').map(|(_, time)| time.to_owned()).unwrap_or_default()
}

/// `AddtlInf` holds at most 105 characters.
pub fn additional_info(text: &str) -> Vec<String> {
    vec![text.chars().take(105).collect()]
}

pub fn rejected(reason: &'static str, text: &str) -> Vec<StatusReason> {
    vec![StatusReason { Rsn: Some(CodeOrProprietary::code(reason)), AddtlInf: additional_info(text) }]
}

/// The status of a transaction with this outcome.
pub fn outcome_status(id: &str, outcome: &Outcome) -> TxStatus {
    match outcome {
        Outcome::Settled { at } => TxStatus {
            OrgnlEndToEndId: Some(id.to_owned()),
            TxSts: Some("ACSC".into()),
            FctvIntrBkSttlmDt: Some(DateTime { DtTm: date_time(*at) }),
            ..Default::default()
        },
        Outcome::Rejected { reason } => refused_status(id, reason.code(), reason.description()),
    }
}

pub fn refused_status(id: &str, code: &'static str, text: &str) -> TxStatus {
    TxStatus {
        OrgnlEndToEndId: Some(id.chars().take(35).collect()),
        TxSts: Some("RJCT".into()),
        StsRsnInf: rejected(code, text),
        ..Default::default()
    }
}

/// A payment for the payee, as the `CdtTrfTxInf` of a pacs.008. The
/// deadline for its answer is `SttlmTmReq/RjctTm` (UTC), as in SEPA Instant.
pub fn delivery(delivery: &Delivery, accepted_at: TimestampMs) -> CreditTransferTx {
    CreditTransferTx {
        PmtId: PaymentId { EndToEndId: delivery.id.to_string(), ..Default::default() },
        IntrBkSttlmAmt: amount(delivery.amount),
        SttlmTmReq: Some(SettlementTimeRequest { RjctTm: time_of_day(delivery.deadline) }),
        AccptncDtTm: Some(date_time(accepted_at)),
        ChrgBr: "SLEV".into(),
        Dbtr: Party::default(),
        DbtrAcct: Some(account_to_iso(&delivery.payer)),
        DbtrAgt: agent(delivery.payer.participant),
        CdtrAgt: agent(delivery.payee.participant),
        Cdtr: Party::default(),
        CdtrAcct: Some(account_to_iso(&delivery.payee)),
        RmtInf: (!delivery.remittance.is_empty()).then(|| Remittance { Ustrd: vec![delivery.remittance.clone()] }),
        ..Default::default()
    }
}

/// A settled return for the original payer, as the `TxInf` of a pacs.004.
pub fn returned(notice: &ReturnNotice) -> ReturnTx {
    ReturnTx {
        RtrId: Some(notice.id.to_string()),
        OrgnlEndToEndId: Some(notice.original.to_string()),
        OrgnlIntrBkSttlmAmt: None,
        RtrdIntrBkSttlmAmt: amount(notice.amount),
        ChrgBr: Some("SLEV".into()),
        RtrRsnInf: vec![ReturnReason {
            Rsn: Some(CodeOrProprietary::code(notice.reason.code())),
            AddtlInf: additional_info(notice.reason.description()),
        }],
    }
}

/// A settled credit as a camt.054 entry.
pub fn credit_entry(id: &EndToEndId, value: Amount, at: TimestampMs, sub_family: &str) -> Entry {
    Entry {
        Amt: amount(value),
        CdtDbtInd: "CRDT".into(),
        Sts: CodeOrProprietary::code("BOOK"),
        BookgDt: Some(DateTime { DtTm: date_time(at) }),
        BkTxCd: BankTransactionCode {
            Domn: Domain { Cd: "PMNT".into(), Fmly: Family { Cd: "RCDT".into(), SubFmlyCd: sub_family.into() } },
        },
        NtryDtls: vec![EntryDetails {
            TxDtls: vec![EntryTransaction { Refs: References { EndToEndId: Some(id.to_string()), TxId: None } }],
        }],
    }
}

/// One `TxInf` of a camt.056 as the `RecallRequest` a gRPC client would
/// send: the original's `OrgnlEndToEndId`, one reason in `CxlRsnInf/Rsn/Cd`
/// and its first `AddtlInf` as the text.
pub fn recall_request(tx: &CancellationTx) -> Result<pb::RecallRequest, Refusal> {
    let (reason, text) = match tx.CxlRsnInf.as_slice() {
        [CancellationReason { Rsn: Some(CodeOrProprietary { Cd: Some(code), Prtry: None }), AddtlInf, .. }] => {
            (code.clone(), AddtlInf.first().cloned().unwrap_or_default())
        }
        _ => {
            return Err(Refusal::new(
                "NOOR",
                "CxlRsnInf: exactly one, with Rsn/Cd (AC03, AM09, DUPL, FRAD, TECH, CUST or UPAY)",
            ));
        }
    };
    if tx.OrgnlIntrBkSttlmAmt.as_ref().is_some_and(|amount| amount.Ccy != CURRENCY) {
        return Err(Refusal::new("NOOR", format!("OrgnlIntrBkSttlmAmt/@Ccy: this switch settles in {CURRENCY}")));
    }
    Ok(pb::RecallRequest {
        original_end_to_end_id: tx.OrgnlEndToEndId.clone().unwrap_or_default(),
        reason,
        reason_code: 0,
        text,
    })
}

/// The ISO answer to a recall the switch refused: NOOR and ARDT are ISO's
/// (ExternalPaymentCancellationRejection1Code); other reasons are the
/// switch's own (`Prtry`: TM01 past the return window, AG10 suspended,
/// ALREADY_RECALLED, INVALID_FIELD), with the explanation in `AddtlInf`.
pub fn recall_refusal_of(status: &Status) -> Refusal {
    use tonic_types::StatusExt;
    let reason = status.get_details_error_info().map(|info| info.reason).unwrap_or_default();
    let code = match reason.as_str() {
        "NOOR" => "NOOR",
        "ARDT" => "ARDT",
        "TM01" => "TM01",
        "AG10" => "AG10",
        "ALREADY_RECALLED" => "ALREADY_RECALLED",
        _ => "INVALID_FIELD",
    };
    Refusal::new(code, status.message())
}

/// A recall the switch refused, as one `TxInfAndSts` of a camt.029.
pub fn recall_refused(original: &str, id: Option<String>, code: &'static str, text: &str) -> CancellationTxStatus {
    let reason = if matches!(code, "NOOR" | "ARDT") {
        CodeOrProprietary::code(code)
    } else {
        CodeOrProprietary::proprietary(code)
    };
    CancellationTxStatus {
        CxlStsId: id,
        OrgnlEndToEndId: Some(original.chars().take(35).collect()),
        TxCxlSts: Some("RJCR".into()),
        CxlStsRsnInf: vec![CancellationReason { Orgtr: None, Rsn: Some(reason), AddtlInf: additional_info(text) }],
        ..Default::default()
    }
}

/// Where a recall stands, as one `TxInfAndSts` of a camt.029: PDCR open,
/// ACCR accepted (returned: the return id in `OrgnlTxId`), RJCR refused or
/// expired (NOAS) with the reason.
pub fn recall_status(recall: &Recall) -> CancellationTxStatus {
    let original = Some(recall.original.to_string());
    let refused = |reason: ponte_domain::ReasonCode| CancellationTxStatus {
        OrgnlEndToEndId: original.clone(),
        TxCxlSts: Some("RJCR".into()),
        CxlStsRsnInf: vec![CancellationReason {
            Orgtr: None,
            Rsn: Some(CodeOrProprietary::code(reason.code())),
            AddtlInf: additional_info(reason.description()),
        }],
        OrgnlIntrBkSttlmAmt: Some(amount(recall.amount)),
        ..Default::default()
    };
    match recall.state {
        RecallState::Open => CancellationTxStatus {
            OrgnlEndToEndId: original.clone(),
            TxCxlSts: Some("PDCR".into()),
            OrgnlIntrBkSttlmAmt: Some(amount(recall.amount)),
            ..Default::default()
        },
        RecallState::Accepted { return_id, .. } => CancellationTxStatus {
            OrgnlEndToEndId: original.clone(),
            OrgnlTxId: Some(return_id.to_string()),
            TxCxlSts: Some("ACCR".into()),
            OrgnlIntrBkSttlmAmt: Some(amount(recall.amount)),
            ..Default::default()
        },
        RecallState::Refused { reason } => refused(reason),
        RecallState::Expired => refused(ponte_domain::ReasonCode::NoAnswer),
    }
}

/// A recall for the payee's participant, as the `TxInf` of a camt.056
/// (`OrgnlIntrBkSttlmAmt`: what is left of the payment to give back).
pub fn recall_tx(recall: &Recall) -> CancellationTx {
    CancellationTx {
        OrgnlEndToEndId: Some(recall.original.to_string()),
        OrgnlIntrBkSttlmAmt: Some(amount(recall.amount)),
        CxlRsnInf: vec![CancellationReason {
            Orgtr: None,
            Rsn: Some(CodeOrProprietary::code(recall.reason.code())),
            AddtlInf: if recall.text.is_empty() { Vec::new() } else { additional_info(&recall.text) },
        }],
        ..Default::default()
    }
}

/// A payee's refusal in a camt.029: `TxCxlSts` RJCR with the reason in
/// `CxlStsRsnInf/Rsn/Cd`. Gives the original id and the code, as read.
pub fn recall_refusal(tx: &CancellationTxStatus) -> Result<(String, String), String> {
    let original = tx.OrgnlEndToEndId.clone().ok_or("OrgnlEndToEndId is required")?;
    match tx.TxCxlSts.as_deref() {
        Some("RJCR") => {}
        Some("ACCR") => {
            return Err(format!(
                "{original}: a recall is accepted by returning the payment (pacs.004), not by camt.029"
            ));
        }
        other => return Err(format!("{original}: TxCxlSts {other:?}: RJCR refuses a recall")),
    }
    match tx.CxlStsRsnInf.first().and_then(|r| r.Rsn.as_ref()) {
        Some(CodeOrProprietary { Cd: Some(code), Prtry: None }) => {
            EndToEndId::parse(&original).map_err(|e| format!("OrgnlEndToEndId {original:?}: {e}"))?;
            match code.parse::<ponte_domain::ReasonCode>() {
                Ok(reason) if reason.is_recall_refusal() => Ok((original, code.clone())),
                _ => Err(format!(
                    "{original}: CxlStsRsnInf/Rsn/Cd {code:?} is not a recall refusal (AC04, AM04, ARDT, CUST, LEGL, \
                     NOAS or AGNT)"
                )),
            }
        }
        _ => Err(format!("{original}: RJCR needs CxlStsRsnInf/Rsn/Cd (AC04, AM04, ARDT, CUST, LEGL, NOAS or AGNT)")),
    }
}
