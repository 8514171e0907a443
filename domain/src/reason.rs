//! Reason codes: business outcomes as values.
//!
//! Every rejection carries one stable code in the ISO 20022 external code set
//! style. Each code has a number that is never reused, and is either
//! *transient* (the same payment under a new end-to-end id may succeed later:
//! liquidity may return, the payee may come back online) or *final* (retrying
//! will not help). An end-to-end id's outcome is itself always final: a retry
//! must use a new id.

use std::fmt;
use std::str::FromStr;

macro_rules! reason_codes {
    ($( $variant:ident = $number:literal, $code:literal, $transient:literal, $text:literal, $payee:literal; )*) => {
        /// A business outcome code. See the module docs.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[non_exhaustive]
        pub enum ReasonCode {
            $( #[doc = $text] $variant, )*
        }

        impl ReasonCode {
            /// Every code, in declaration order: journals and snapshots
            /// store a code by its position, so new codes are only ever
            /// appended (their numbers need not follow).
            pub const ALL: &'static [ReasonCode] = &[$( ReasonCode::$variant, )*];

            /// How many codes there are: the size of a table indexed by [`ReasonCode::index`].
            pub const COUNT: usize = Self::ALL.len();

            /// This code's position in [`ReasonCode::ALL`], below
            /// [`ReasonCode::COUNT`]: a dense index for per-code tables
            /// (the stable [`ReasonCode::number`] has gaps and may grow).
            pub const fn index(self) -> usize {
                // Variants are declared in the order of ALL, without explicit
                // discriminants, so the discriminant is the position.
                self as usize
            }

            /// The ISO 20022-style four-character code, e.g. "AM04".
            pub const fn code(self) -> &'static str {
                match self { $( ReasonCode::$variant => $code, )* }
            }

            /// The stable number of this code; never reused.
            pub const fn number(self) -> u16 {
                match self { $( ReasonCode::$variant => $number, )* }
            }

            /// Whether the same payment, under a new end-to-end id, may succeed later.
            pub const fn is_transient(self) -> bool {
                match self { $( ReasonCode::$variant => $transient, )* }
            }

            /// A one-line description for people.
            pub const fn description(self) -> &'static str {
                match self { $( ReasonCode::$variant => $text, )* }
            }

            /// Whether a payee may refuse a payment with this code (ISO's
            /// status reasons a payee gives; not the return reasons).
            pub const fn is_reject_reason(self) -> bool {
                self.is_payee_reason() && self.number() < 30
            }

            /// Whether a payee (or a returning participant) may give this code.
            pub const fn is_payee_reason(self) -> bool {
                match self { $( ReasonCode::$variant => $payee, )* }
            }

            /// Whether a payer's participant may recall a settled payment
            /// for this reason (ISO's ExternalCancellationReason1Code, as
            /// camt.056 carries it).
            pub const fn is_recall_reason(self) -> bool {
                matches!(
                    self,
                    ReasonCode::InvalidCreditorAccount
                        | ReasonCode::ReturnExceedsOriginal
                        | ReasonCode::DuplicatePayment
                        | ReasonCode::FraudulentOrigin
                        | ReasonCode::TechnicalProblem
                        | ReasonCode::CustomerDecision
                        | ReasonCode::UnduePayment
                )
            }

            /// Whether a payee's participant may refuse a recall for this
            /// reason (ISO's ExternalPaymentCancellationRejection1Code, as
            /// camt.029 carries it). NOAS is also what a recall left
            /// unanswered past its deadline closes with.
            pub const fn is_recall_refusal(self) -> bool {
                matches!(
                    self,
                    ReasonCode::ClosedAccount
                        | ReasonCode::InsufficientLiquidity
                        | ReasonCode::CustomerDecision
                        | ReasonCode::AlreadyReturned
                        | ReasonCode::LegalDecision
                        | ReasonCode::NoAnswer
                        | ReasonCode::AgentDecision
                )
            }

            pub fn from_number(number: u16) -> Option<ReasonCode> {
                match number { $( $number => Some(ReasonCode::$variant), )* _ => None }
            }
        }

        impl FromStr for ReasonCode {
            type Err = UnknownReasonCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $( $code => Ok(ReasonCode::$variant), )* _ => Err(UnknownReasonCode) }
            }
        }
    };
}

reason_codes! {
    // Raised by the switch.
    InsufficientLiquidity = 1, "AM04", true, "payer participant's liquidity limit would be exceeded", false;
    AmountNotAllowed = 2, "AM02", false, "amount exceeds the maximum allowed for one payment", false;
    DuplicateModified = 3, "AM05", false, "end-to-end id already used with different content", false;
    PayeeTimeout = 4, "AB03", true, "payee participant did not answer before the deadline", false;
    PayeeOffline = 5, "AB08", true, "payee participant has no open inbox", false;
    PayeeBusy = 6, "AB09", true, "payee participant has too many payments in flight", false;
    UnknownPayeeParticipant = 7, "RC07", false, "payee participant is unknown or not active", false;
    PayerSuspended = 8, "AG10", false, "payer participant is suspended", false;
    IdTimestampOutOfRange = 9, "DT01", false, "end-to-end id timestamp too far from the switch clock", false;
    ReturnExceedsOriginal = 10, "AM09", false, "returns would exceed the original amount", false;
    ReturnWindowExpired = 11, "TM01", false, "the original payment is older than the return window", false;
    OriginalNotFound = 12, "NOOR", false, "no settled original payment received by this participant", false;
    UnknownKey = 13, "BE23", false, "the payee key is not registered in the directory", false;
    DuplicatePayment = 14, "DUPL", false, "disbursement already paid or in progress, or its beneficiary is repeated in the envelope", false;
    // Given by payees when they refuse a payment, or by returning participants.
    RejectedByPayee = 20, "DS04", false, "payee rejected the payment", true;
    InvalidCreditorAccount = 21, "AC03", false, "payee account does not exist", true;
    ClosedAccount = 22, "AC04", false, "payee account is closed", true;
    BlockedAccount = 23, "AC06", false, "payee account is blocked", true;
    AccountTypeMismatch = 24, "AG03", false, "payee account does not accept this kind of payment", true;
    OwnerMismatch = 25, "BE01", false, "payee account owner does not match", true;
    RefundRequested = 30, "MD06", false, "return requested by the end customer", true;
    Fraud = 31, "FR01", false, "return because of fraud", true;
    BankError = 32, "BE08", false, "return because of an error by the participant", true;
    // Appended (see `ALL`): raised by the switch.
    OnUsPayment = 15, "AG01", false, "payer and payee are the same participant: that is a book transfer inside it, not a payment through the switch", false;
    // Appended: why a payer's participant recalls a settled payment
    // (camt.056), besides AC03, AM09 and DUPL.
    FraudulentOrigin = 33, "FRAD", false, "recall: the payment was made because of fraud", false;
    TechnicalProblem = 34, "TECH", false, "recall: a technical problem made the payment wrong", false;
    CustomerDecision = 35, "CUST", false, "recall asked by the payer's customer, or refused by the payee's customer", false;
    UnduePayment = 36, "UPAY", false, "recall: the payment was not due", false;
    // Appended: why a payee's participant refuses a recall (camt.029),
    // besides AC04, AM04 and CUST.
    AlreadyReturned = 40, "ARDT", false, "recall refused: the payment was already returned", false;
    LegalDecision = 41, "LEGL", false, "recall refused: a legal decision forbids the return", false;
    NoAnswer = 42, "NOAS", false, "recall refused: no answer from the payee's customer, or none from its participant before the deadline", false;
    AgentDecision = 43, "AGNT", false, "recall refused: the payee participant's own decision", false;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code")]
pub struct UnknownReasonCode;

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.description())
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_numbers_are_unique_and_round_trip() {
        let mut codes = HashSet::new();
        let mut numbers = HashSet::new();
        for &reason in ReasonCode::ALL {
            assert!(codes.insert(reason.code()), "duplicate code {}", reason.code());
            assert!(numbers.insert(reason.number()), "duplicate number {}", reason.number());
            assert_eq!(reason.code().parse::<ReasonCode>(), Ok(reason));
            assert_eq!(ReasonCode::from_number(reason.number()), Some(reason));
            assert_eq!(reason.code().len(), 4);
        }
    }

    #[test]
    fn indexes_are_dense_and_follow_all() {
        for (position, &reason) in ReasonCode::ALL.iter().enumerate() {
            assert_eq!(reason.index(), position, "{reason:?}");
        }
        assert_eq!(ReasonCode::COUNT, ReasonCode::ALL.len());
    }

    /// docs/PAYMENTS.md "Reason codes" is the table banks read: every code
    /// with its number, whether it is transient and who gives it, and
    /// nothing else.
    #[test]
    fn the_reason_code_table_in_the_docs_is_the_code() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PAYMENTS.md")).unwrap();
        let section = doc.split("## Reason codes").nth(1).unwrap().split("\n## ").next().unwrap();
        let mut documented: Vec<(String, u16, bool, String)> = section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| code"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[2].parse().unwrap(), cells[3] == "yes", cells[5].to_owned())
            })
            .collect();
        documented.sort();
        let mut actual: Vec<(String, u16, bool, String)> = ReasonCode::ALL
            .iter()
            .map(|r| {
                let by = if r.is_reject_reason() {
                    "payee"
                } else if r.is_payee_reason() {
                    "returner"
                } else if r.is_recall_reason() && r.is_recall_refusal() {
                    "recaller, recall's payee"
                } else if r.is_recall_reason() && r.number() > 32 {
                    "recaller"
                } else if r.is_recall_refusal() && r.number() > 32 {
                    "recall's payee"
                } else {
                    "switch"
                };
                (r.code().to_owned(), r.number(), r.is_transient(), by.to_owned())
            })
            .collect();
        actual.sort();
        assert_eq!(documented, actual);
    }

    #[test]
    fn transient_codes_are_the_ones_a_retry_can_change() {
        let transient: Vec<_> = ReasonCode::ALL.iter().filter(|r| r.is_transient()).map(|r| r.code()).collect();
        assert_eq!(transient, ["AM04", "AB03", "AB08", "AB09"]);
    }
}
