//! Identifiers: participant codes and end-to-end ids.

use crate::TimestampMs;
use std::fmt;
use std::str::FromStr;

/// A participant's 8-digit code (as Brazil's ISPB). Kept as a number so maps
/// and journal records stay small; always printed with 8 digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ParticipantId(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("participant code must be exactly 8 digits")]
    ParticipantCode,
    #[error(
        "end-to-end id must be 32 characters: 'E' (payment) or 'D' (return), 8-digit participant code, yyyyMMddHHmm, 11 letters or digits"
    )]
    EndToEndFormat,
    #[error("end-to-end id carries an impossible date or time")]
    EndToEndTimestamp,
}

impl ParticipantId {
    pub const fn new(code: u32) -> Option<ParticipantId> {
        if code <= 99_999_999 { Some(ParticipantId(code)) } else { None }
    }

    pub const fn code(self) -> u32 {
        self.0
    }
}

impl FromStr for ParticipantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::ParticipantCode);
        }
        Ok(ParticipantId(s.parse().map_err(|_| IdError::ParticipantCode)?))
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What an end-to-end id identifies: its first letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IdKind {
    /// 'E': a payment.
    Payment,
    /// 'D': a return of an earlier payment (Pix's "devolução").
    Return,
}

/// Length of an end-to-end id in characters (all ASCII).
pub const END_TO_END_ID_LEN: usize = 32;

/// The client-made id of one payment or return:
/// `E` | `D`, the 8-digit code of the participant that made it, the UTC
/// creation time as `yyyyMMddHHmm`, then 11 ASCII letters or digits.
///
/// Held inline (32 bytes, no heap) because the engine keeps one per transfer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndToEndId([u8; END_TO_END_ID_LEN]);

// As one string (not 32 separate bytes): compact in the journal, readable
// in JSON. Compact formats get the bytes: postcard writes a string and a
// byte string identically (length, then the bytes), so the journal is the
// same, and the engine skips re-checking 32 known-ASCII bytes as UTF-8 on
// every event it writes (6% of the engine's time in a profile).
impl serde::Serialize for EndToEndId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.as_str())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for EndToEndId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        EndToEndId::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl EndToEndId {
    pub fn parse(text: &str) -> Result<EndToEndId, IdError> {
        let bytes = text.as_bytes();
        if bytes.len() != END_TO_END_ID_LEN {
            return Err(IdError::EndToEndFormat);
        }
        if bytes[0] != b'E' && bytes[0] != b'D' {
            return Err(IdError::EndToEndFormat);
        }
        if !bytes[1..21].iter().all(u8::is_ascii_digit) {
            return Err(IdError::EndToEndFormat);
        }
        if !bytes[21..].iter().all(u8::is_ascii_alphanumeric) {
            return Err(IdError::EndToEndFormat);
        }
        let mut raw = [0_u8; END_TO_END_ID_LEN];
        raw.copy_from_slice(bytes);
        let id = EndToEndId(raw);
        id.created_at_ms()?;
        Ok(id)
    }

    /// Makes a fresh id for `participant` at `now_ms`, with a random suffix.
    /// Banks normally make their own; the SDK and the demo use this.
    pub fn generate(kind: IdKind, participant: ParticipantId, now_ms: TimestampMs) -> EndToEndId {
        use rand::Rng;
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let mut suffix = [0_u8; 11];
        for b in &mut suffix {
            *b = ALPHABET[rng.random_range(0..ALPHABET.len())];
        }
        EndToEndId::from_parts(kind, participant, now_ms, &suffix)
    }

    /// Builds an id from its parts; `suffix` must be 11 ASCII alphanumerics.
    pub fn from_parts(kind: IdKind, participant: ParticipantId, now_ms: TimestampMs, suffix: &[u8; 11]) -> EndToEndId {
        assert!(suffix.iter().all(u8::is_ascii_alphanumeric), "suffix must be alphanumeric");
        let stamp = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let letter = match kind {
            IdKind::Payment => 'E',
            IdKind::Return => 'D',
        };
        let text = format!(
            "{letter}{participant}{:04}{:02}{:02}{:02}{:02}{}",
            stamp.year(),
            u8::from(stamp.month()),
            stamp.day(),
            stamp.hour(),
            stamp.minute(),
            std::str::from_utf8(suffix).expect("alphanumeric is ASCII"),
        );
        EndToEndId::parse(&text).expect("generated ids are well formed")
    }

    pub fn kind(&self) -> IdKind {
        if self.0[0] == b'E' { IdKind::Payment } else { IdKind::Return }
    }

    /// The participant that made the id.
    pub fn participant(&self) -> ParticipantId {
        let mut code = 0_u32;
        for &b in &self.0[1..9] {
            code = code * 10 + u32::from(b - b'0');
        }
        ParticipantId(code)
    }

    /// The creation minute the id carries, as epoch milliseconds.
    pub fn created_at_ms(&self) -> Result<TimestampMs, IdError> {
        let digits = |range: std::ops::Range<usize>| -> u32 {
            self.0[range].iter().fold(0, |acc, &b| acc * 10 + u32::from(b - b'0'))
        };
        let year = digits(9..13) as i32;
        let month = time::Month::try_from(digits(13..15) as u8).map_err(|_| IdError::EndToEndTimestamp)?;
        let day = digits(15..17) as u8;
        let hour = digits(17..19) as u8;
        let minute = digits(19..21) as u8;
        let date = time::Date::from_calendar_date(year, month, day).map_err(|_| IdError::EndToEndTimestamp)?;
        let clock = time::Time::from_hms(hour, minute, 0).map_err(|_| IdError::EndToEndTimestamp)?;
        Ok(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp() * 1000)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("validated as ASCII")
    }

    /// The id's 32 ASCII bytes.
    pub fn as_bytes(&self) -> &[u8; END_TO_END_ID_LEN] {
        &self.0
    }
}

impl FromStr for EndToEndId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndToEndId::parse(s)
    }
}

impl fmt::Display for EndToEndId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EndToEndId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Journals written before ids were serialized as bytes must read the
    /// same, and JSON keeps the readable string.
    #[test]
    fn an_id_encodes_as_its_text_in_the_journal_and_in_json() {
        let id: EndToEndId = "E1000000120261126215500000000001".parse().unwrap();
        let compact = postcard::to_allocvec(&id).unwrap();
        assert_eq!(compact, postcard::to_allocvec(id.as_str()).unwrap());
        assert_eq!(postcard::from_bytes::<EndToEndId>(&compact).unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<EndToEndId>(&format!("\"{id}\"")).unwrap(), id);
    }

    #[test]
    fn participant_codes() {
        assert_eq!("00000001".parse::<ParticipantId>().unwrap().code(), 1);
        assert_eq!("12345678".parse::<ParticipantId>().unwrap().to_string(), "12345678");
        for bad in ["1234567", "123456789", "1234567a", "", "-1234567"] {
            assert_eq!(bad.parse::<ParticipantId>(), Err(IdError::ParticipantCode), "{bad}");
        }
    }

    #[test]
    fn end_to_end_ids() {
        let id = EndToEndId::parse("E1234567820261126215501abcDEF12345").unwrap_err();
        assert_eq!(id, IdError::EndToEndFormat);
        let id = EndToEndId::parse("E12345678202611262155abcDEF12345").unwrap();
        assert_eq!(id.kind(), IdKind::Payment);
        assert_eq!(id.participant().code(), 12345678);
        assert_eq!(id.created_at_ms().unwrap(), 1_795_730_100_000);
        assert_eq!(EndToEndId::parse("D12345678202611262155abcDEF12345").unwrap().kind(), IdKind::Return);
        assert_eq!(EndToEndId::parse("X12345678202611262155abcDEF12345"), Err(IdError::EndToEndFormat));
        assert_eq!(EndToEndId::parse("E12345678202613262155abcDEF12345"), Err(IdError::EndToEndTimestamp));
        assert_eq!(EndToEndId::parse("E12345678202602302155abcDEF12345"), Err(IdError::EndToEndTimestamp));
        assert_eq!(EndToEndId::parse("E12345678202611262160abcDEF12345"), Err(IdError::EndToEndTimestamp));
        assert_eq!(EndToEndId::parse("E12345678202611262155abcDEF1234-"), Err(IdError::EndToEndFormat));
        assert_eq!(EndToEndId::parse("E12345678202611262155abcDEF1234é"), Err(IdError::EndToEndFormat));
    }

    proptest! {
        #[test]
        fn generated_ids_parse_back(code in 0_u32..=99_999_999, now in 0_i64..4_000_000_000_000) {
            let p = ParticipantId::new(code).unwrap();
            let id = EndToEndId::generate(IdKind::Payment, p, now);
            let again = EndToEndId::parse(id.as_str()).unwrap();
            prop_assert_eq!(again, id);
            prop_assert_eq!(again.participant(), p);
            prop_assert_eq!(again.created_at_ms().unwrap(), now - now % 60_000);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = EndToEndId::parse(&text);
        }
    }
}
