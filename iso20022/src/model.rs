//! The parts of each ISO 20022 message that Ponte's usage guideline allows,
//! as serde models read and written by quick-xml.
//!
//! Field names are the ISO tags themselves, so each struct reads against
//! its XSD type (named in its comment). Fields are in the XSD's sequence
//! order, which is the order the writer uses. Every struct refuses elements
//! it does not name (`deny_unknown_fields`): an element outside the
//! guideline is an error naming it, never silently dropped. Elements a
//! sender may include and Ponte does not use are read and ignored where
//! the guideline says so (`Ignored`).
#![allow(non_snake_case)]

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// An optional element a sender may include and Ponte does not use.
pub type Ignored = Option<IgnoredAny>;

// ------------------------------------------------------------------ shared

/// `ActiveCurrencyAndAmount` / `ActiveOrHistoricCurrencyAndAmount`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amt {
    #[serde(rename = "@Ccy")]
    pub Ccy: String,
    #[serde(rename = "$text")]
    pub value: String,
}

/// A `...Choice` of an external code or a proprietary one
/// (`CashAccountType2Choice`, `StatusReason6Choice`, `ReturnReason5Choice`,
/// `ProxyAccountType1Choice`, `EntryStatus1Choice`...): exactly one is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeOrProprietary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Cd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Prtry: Option<String>,
}

impl CodeOrProprietary {
    pub fn code(code: &str) -> CodeOrProprietary {
        CodeOrProprietary { Cd: Some(code.to_owned()), Prtry: None }
    }
    pub fn proprietary(code: &str) -> CodeOrProprietary {
        CodeOrProprietary { Cd: None, Prtry: Some(code.to_owned()) }
    }
}

/// `BranchAndFinancialInstitutionIdentification6`: a participant, by its
/// clearing-system member id (the 8-digit participant code).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub FinInstnId: FinInstnId,
}

/// `FinancialInstitutionIdentification18`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinInstnId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ClrSysMmbId: Option<ClrSysMmbId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Othr: Option<GenericId>,
}

/// `ClearingSystemMemberIdentification2`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClrSysMmbId {
    #[serde(default, skip_serializing)]
    pub ClrSysId: Ignored,
    pub MmbId: String,
}

/// `GenericFinancialIdentification1` (only its `Id`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericId {
    pub Id: String,
}

/// `CashAccount38`: an account by its number (`Othr/Id`) and branch
/// (`Othr/Issr`), with its type; or `NOTPROVIDED` and a proxy (a key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashAccount {
    pub Id: AccountId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Tp: Option<CodeOrProprietary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Prxy: Option<Proxy>,
}

/// `AccountIdentification4Choice`: `Othr` only (Ponte's accounts have no IBAN).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountId {
    pub Othr: GenericAccountId,
}

/// `GenericAccountIdentification1`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericAccountId {
    pub Id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Issr: Option<String>,
}

/// `ProxyAccountIdentification1`: a directory key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Tp: Option<CodeOrProprietary>,
    pub Id: String,
}

/// `PartyIdentification135` (only its name).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Nm: Option<String>,
    #[serde(default, skip_serializing)]
    pub PstlAdr: Ignored,
    #[serde(default, skip_serializing)]
    pub Id: Ignored,
    #[serde(default, skip_serializing)]
    pub CtryOfRes: Ignored,
}

/// `RemittanceInformation16` (unstructured lines only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remittance {
    #[serde(default)]
    pub Ustrd: Vec<String>,
}

/// `SettlementInstruction7` (only its method: `CLRG`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SttlmInf {
    pub SttlmMtd: String,
}

/// `GroupHeader91` and the like: a message id and its creation time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub MsgId: String,
    pub CreDtTm: String,
    #[serde(default, skip_serializing)]
    pub InstgAgt: Ignored,
    #[serde(default, skip_serializing)]
    pub InstdAgt: Ignored,
}

/// `GroupHeader93` / `GroupHeader90`: a batch of transactions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    pub MsgId: String,
    pub CreDtTm: String,
    pub NbOfTxs: String,
    #[serde(default, skip_serializing)]
    pub CtrlSum: Ignored,
    #[serde(default, skip_serializing)]
    pub TtlIntrBkSttlmAmt: Ignored,
    #[serde(default, skip_serializing)]
    pub IntrBkSttlmDt: Ignored,
    pub SttlmInf: SttlmInf,
    #[serde(default, skip_serializing)]
    pub PmtTpInf: Ignored,
    #[serde(default, skip_serializing)]
    pub InstgAgt: Ignored,
    #[serde(default, skip_serializing)]
    pub InstdAgt: Ignored,
}

/// `DateAndDateTime2Choice` (the date-time).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateTime {
    pub DtTm: String,
}

// ---------------------------------------------------------------- pacs.008

/// `pacs.008.001.09` `FIToFICustomerCreditTransferV09`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditTransfer {
    pub GrpHdr: BatchHeader,
    pub CdtTrfTxInf: Vec<CreditTransferTx>,
}

/// `CreditTransferTransaction43`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditTransferTx {
    pub PmtId: PaymentId,
    #[serde(default, skip_serializing)]
    pub PmtTpInf: Ignored,
    pub IntrBkSttlmAmt: Amt,
    #[serde(default, skip_serializing)]
    pub IntrBkSttlmDt: Ignored,
    /// The payee's deadline (written to the payee; ignored from a payer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub SttlmTmReq: Option<SettlementTimeRequest>,
    /// When the switch accepted the payment (written to the payee).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub AccptncDtTm: Option<String>,
    pub ChrgBr: String,
    pub Dbtr: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub DbtrAcct: Option<CashAccount>,
    pub DbtrAgt: Agent,
    pub CdtrAgt: Agent,
    pub Cdtr: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub CdtrAcct: Option<CashAccount>,
    #[serde(default, skip_serializing)]
    pub Purp: Ignored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub RmtInf: Option<Remittance>,
}

/// `SettlementTimeRequest2` (the time by which the payee must answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementTimeRequest {
    pub RjctTm: String,
}

/// `PaymentIdentification13`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub InstrId: Option<String>,
    pub EndToEndId: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub TxId: Option<String>,
    #[serde(default, skip_serializing)]
    pub UETR: Ignored,
}

// ---------------------------------------------------------------- pacs.002

/// `pacs.002.001.11` `FIToFIPaymentStatusReportV11`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    pub GrpHdr: Header,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlGrpInfAndSts: Option<OriginalGroupStatus>,
    #[serde(default)]
    pub TxInfAndSts: Vec<TxStatus>,
}

/// `OriginalGroupHeader17`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginalGroupStatus {
    pub OrgnlMsgId: String,
    pub OrgnlMsgNmId: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlNbOfTxs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub GrpSts: Option<String>,
}

/// `PaymentTransaction123`: the status of one transaction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub StsId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlEndToEndId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlTxId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub TxSts: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub StsRsnInf: Vec<StatusReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub AccptncDtTm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub FctvIntrBkSttlmDt: Option<DateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ClrSysRef: Option<String>,
}

/// `StatusReasonInformation12`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReason {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Rsn: Option<CodeOrProprietary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub AddtlInf: Vec<String>,
}

// ---------------------------------------------------------------- pacs.004

/// `pacs.004.001.10` `PaymentReturnV10`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentReturn {
    pub GrpHdr: BatchHeader,
    pub TxInf: Vec<ReturnTx>,
}

/// `PaymentTransaction118`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnTx {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub RtrId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlEndToEndId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlIntrBkSttlmAmt: Option<Amt>,
    pub RtrdIntrBkSttlmAmt: Amt,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ChrgBr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub RtrRsnInf: Vec<ReturnReason>,
}

/// `PaymentReturnReason6`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnReason {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Rsn: Option<CodeOrProprietary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub AddtlInf: Vec<String>,
}

// ---------------------------------------------------------------- pacs.028

/// `pacs.028.001.04` `FIToFIPaymentStatusRequestV04`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub GrpHdr: Header,
    #[serde(default)]
    pub TxInf: Vec<StatusRequestTx>,
}

/// `PaymentTransaction121`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequestTx {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub StsReqId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlEndToEndId: Option<String>,
}

// ---------------------------------------------------------------- camt.054

/// `camt.054.001.08` `BankToCustomerDebitCreditNotificationV08`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    pub GrpHdr: Header,
    pub Ntfctn: Vec<AccountNotification>,
}

/// `AccountNotification17`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountNotification {
    pub Id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub CreDtTm: Option<String>,
    pub Acct: NotificationAccount,
    #[serde(default)]
    pub Ntry: Vec<Entry>,
}

/// `CashAccount39` (the participant's settlement account at the switch).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationAccount {
    pub Id: AccountId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Ccy: Option<String>,
}

/// `ReportEntry10`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub Amt: Amt,
    pub CdtDbtInd: String,
    pub Sts: CodeOrProprietary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub BookgDt: Option<DateTime>,
    pub BkTxCd: BankTransactionCode,
    #[serde(default)]
    pub NtryDtls: Vec<EntryDetails>,
}

/// `BankTransactionCodeStructure4` (its domain).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankTransactionCode {
    pub Domn: Domain,
}

/// `BankTransactionCodeStructure5`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    pub Cd: String,
    pub Fmly: Family,
}

/// `BankTransactionCodeStructure6`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    pub Cd: String,
    pub SubFmlyCd: String,
}

/// `EntryDetails9`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDetails {
    #[serde(default)]
    pub TxDtls: Vec<EntryTransaction>,
}

/// `EntryTransaction10` (its references).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryTransaction {
    pub Refs: References,
}

/// `TransactionReferences6`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct References {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub EndToEndId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub TxId: Option<String>,
}

// ---------------------------------------------------------------- camt.056

/// `CaseAssignment5`: who assigns the case to whom.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub Id: String,
    pub Assgnr: PartyChoice,
    pub Assgne: PartyChoice,
    pub CreDtTm: String,
}

/// `Party40Choice`, as an agent (a participant) only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyChoice {
    pub Agt: Agent,
}

/// `camt.056.001.09` `FIToFIPaymentCancellationRequestV09`: recalls of
/// settled payments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationRequest {
    pub Assgnmt: Assignment,
    #[serde(default, skip_serializing)]
    pub Case: Ignored,
    #[serde(default, skip_serializing)]
    pub CtrlData: Ignored,
    pub Undrlyg: Vec<Underlying>,
}

/// `UnderlyingTransaction26` (transactions only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlying {
    #[serde(default)]
    pub TxInf: Vec<CancellationTx>,
}

/// `PaymentTransaction120`: one payment recalled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationTx {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub CxlId: Option<String>,
    #[serde(default, skip_serializing)]
    pub Case: Ignored,
    #[serde(default, skip_serializing)]
    pub OrgnlGrpInf: Ignored,
    #[serde(default, skip_serializing)]
    pub OrgnlInstrId: Ignored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlEndToEndId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlTxId: Option<String>,
    #[serde(default, skip_serializing)]
    pub OrgnlUETR: Ignored,
    #[serde(default, skip_serializing)]
    pub OrgnlClrSysRef: Ignored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlIntrBkSttlmAmt: Option<Amt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlIntrBkSttlmDt: Option<String>,
    #[serde(default, skip_serializing)]
    pub Assgnr: Ignored,
    #[serde(default, skip_serializing)]
    pub Assgne: Ignored,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub CxlRsnInf: Vec<CancellationReason>,
}

/// `PaymentCancellationReason5` (and camt.029's `CancellationStatusReason4`:
/// the same shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationReason {
    #[serde(default, skip_serializing)]
    pub Orgtr: Ignored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Rsn: Option<CodeOrProprietary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub AddtlInf: Vec<String>,
}

// ---------------------------------------------------------------- camt.029

/// `camt.029.001.10` `ResolutionOfInvestigationV10`: the answer to a
/// recall (Ponte: a refusal, or where it stands).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub Assgnmt: Assignment,
    #[serde(default, skip_serializing)]
    pub RslvdCase: Ignored,
    pub Sts: InvestigationStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub CxlDtls: Vec<CancellationDetails>,
}

/// `InvestigationStatus5Choice` (the confirmation code only: RJCR, ACCR,
/// PDCR... of ExternalInvestigationExecutionConfirmation1Code).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvestigationStatus {
    pub Conf: String,
}

/// `UnderlyingTransaction25` (transactions only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationDetails {
    #[serde(default)]
    pub TxInfAndSts: Vec<CancellationTxStatus>,
}

/// `PaymentTransaction127`: where the recall of one payment stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationTxStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub CxlStsId: Option<String>,
    #[serde(default, skip_serializing)]
    pub RslvdCase: Ignored,
    #[serde(default, skip_serializing)]
    pub OrgnlGrpInf: Ignored,
    #[serde(default, skip_serializing)]
    pub OrgnlInstrId: Ignored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlEndToEndId: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlTxId: Option<String>,
    #[serde(default, skip_serializing)]
    pub OrgnlClrSysRef: Ignored,
    #[serde(default, skip_serializing)]
    pub OrgnlUETR: Ignored,
    /// RJCR, ACCR or PDCR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub TxCxlSts: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub CxlStsRsnInf: Vec<CancellationReason>,
    #[serde(default, skip_serializing)]
    pub RsltnRltdInf: Ignored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub OrgnlIntrBkSttlmAmt: Option<Amt>,
}
