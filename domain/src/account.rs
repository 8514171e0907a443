//! Accounts at participants.

use crate::ids::ParticipantId;
use std::fmt;

/// Longest account number accepted (characters).
pub const ACCOUNT_NUMBER_LEN_MAX: usize = 20;

/// The kind of account a payment moves money from or to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AccountType {
    Checking,
    Savings,
    Payment,
    Salary,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Checking => "CHECKING",
            AccountType::Savings => "SAVINGS",
            AccountType::Payment => "PAYMENT",
            AccountType::Salary => "SALARY",
        }
    }
}

/// An account at a participant: 4-digit branch and an account number of up to
/// [`ACCOUNT_NUMBER_LEN_MAX`] digits. Stored inline (no heap) because the
/// engine keeps two per transfer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Account {
    pub participant: ParticipantId,
    pub branch: u16,
    number_len: u8,
    number: [u8; ACCOUNT_NUMBER_LEN_MAX],
    pub kind: AccountType,
}

/// The serialized form: the number as one string, not 20 separate bytes.
#[derive(serde::Serialize, serde::Deserialize)]
struct AccountRepr<'a> {
    participant: ParticipantId,
    branch: u16,
    #[serde(borrow)]
    number: std::borrow::Cow<'a, str>,
    kind: AccountType,
}

/// [`AccountRepr`] as written: the same fields, the number written as
/// bytes to compact formats (see [`Digits`]).
#[derive(serde::Serialize)]
struct AccountOut<'a> {
    participant: ParticipantId,
    branch: u16,
    number: Digits<'a>,
    kind: AccountType,
}

/// Validated ASCII digits. Compact formats (the journal's postcard) write a
/// string and a byte string identically, so they get the bytes without a
/// UTF-8 check per write; readable formats (JSON) get the string.
struct Digits<'a>(&'a [u8]);

impl serde::Serialize for Digits<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(std::str::from_utf8(self.0).map_err(serde::ser::Error::custom)?)
        } else {
            serializer.serialize_bytes(self.0)
        }
    }
}

impl serde::Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AccountOut {
            participant: self.participant,
            branch: self.branch,
            number: Digits(&self.number[..usize::from(self.number_len)]),
            kind: self.kind,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Account {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = AccountRepr::deserialize(deserializer)?;
        if repr.branch > 9999 {
            return Err(serde::de::Error::custom(AccountError::Branch));
        }
        Account::new(repr.participant, &repr.branch.to_string(), &repr.number, repr.kind)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("branch must be 1 to 4 digits")]
    Branch,
    #[error("account number must be 1 to {ACCOUNT_NUMBER_LEN_MAX} digits")]
    Number,
}

impl Account {
    pub fn new(
        participant: ParticipantId,
        branch: &str,
        number: &str,
        kind: AccountType,
    ) -> Result<Account, AccountError> {
        if branch.is_empty() || branch.len() > 4 || !branch.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountError::Branch);
        }
        if number.is_empty() || number.len() > ACCOUNT_NUMBER_LEN_MAX || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountError::Number);
        }
        let mut raw = [0_u8; ACCOUNT_NUMBER_LEN_MAX];
        raw[..number.len()].copy_from_slice(number.as_bytes());
        Ok(Account {
            participant,
            branch: branch.parse().map_err(|_| AccountError::Branch)?,
            number_len: number.len() as u8,
            number: raw,
            kind,
        })
    }

    /// The payee of a payment whose key could not be resolved: participant
    /// 00000000 (a code the switch never admits), branch 0000, number 0.
    pub fn unresolved() -> Account {
        let mut number = [0_u8; ACCOUNT_NUMBER_LEN_MAX];
        number[0] = b'0';
        Account {
            participant: ParticipantId::new(0).expect("0 is a valid code"),
            branch: 0,
            number_len: 1,
            number,
            kind: AccountType::Payment,
        }
    }

    pub fn number(&self) -> &str {
        std::str::from_utf8(&self.number[..usize::from(self.number_len)]).expect("validated as ASCII digits")
    }

    /// The branch as the 4 digits it is written with.
    pub fn branch_text(&self) -> String {
        format!("{:04}", self.branch)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:04}/{}/{}", self.participant, self.branch, self.number(), self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a journal holds for an account are the same as when the
    /// number was written as a string, and JSON is unchanged.
    #[test]
    fn an_account_encodes_as_before_in_the_journal_and_in_json() {
        let account =
            Account::new(ParticipantId::new(10000001).unwrap(), "1", "12345678", AccountType::Checking).unwrap();
        let as_before = AccountRepr {
            participant: account.participant,
            branch: account.branch,
            number: account.number().into(),
            kind: account.kind,
        };
        let compact = postcard::to_allocvec(&account).unwrap();
        assert_eq!(compact, postcard::to_allocvec(&as_before).unwrap());
        assert_eq!(postcard::from_bytes::<Account>(&compact).unwrap(), account);
        let json = serde_json::to_string(&account).unwrap();
        assert_eq!(json, serde_json::to_string(&as_before).unwrap());
        assert!(json.contains("\"number\":\"12345678\""), "{json}");
        assert_eq!(serde_json::from_str::<Account>(&json).unwrap(), account);
    }

    #[test]
    fn validates_branch_and_number() {
        let p = ParticipantId::new(1).unwrap();
        let a = Account::new(p, "1", "12345", AccountType::Checking).unwrap();
        assert_eq!(a.branch_text(), "0001");
        assert_eq!(a.number(), "12345");
        assert_eq!(Account::new(p, "", "1", AccountType::Checking), Err(AccountError::Branch));
        assert_eq!(Account::new(p, "12345", "1", AccountType::Checking), Err(AccountError::Branch));
        assert_eq!(Account::new(p, "1", "", AccountType::Checking), Err(AccountError::Number));
        assert_eq!(Account::new(p, "1", &"1".repeat(21), AccountType::Checking), Err(AccountError::Number));
        assert_eq!(Account::new(p, "1", "12a", AccountType::Checking), Err(AccountError::Number));
    }
}
