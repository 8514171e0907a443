//! Country profiles: what differs per country in the directory's keys
//! (national ids and their check digits, the country whose numbering plan
//! phone keys must belong to), chosen by configuration
//! (`[engine] country = "BR"`).
//!
//! Adding a country: implement [`CountryProfile`] for it and list it in
//! [`PROFILES`]; configuration, the wire layer, the CLI and the CSV reader
//! find it there by its code.

use crate::key_error::KeyError;

/// Every country profile this build knows, by code.
pub static PROFILES: &[&dyn CountryProfile] = &[&Brazil, &India];

/// What differs per country: national id formats and check digits, and
/// the numbering plan phone keys belong to.
pub trait CountryProfile: Send + Sync {
    /// The ISO 3166-1 alpha-2 code the profile is chosen by (`BR`).
    fn code(&self) -> &'static str;
    /// Checks and canonicalises a person's national id.
    fn person_id(&self, text: &str) -> Result<String, KeyError>;
    /// Checks and canonicalises a business's national id.
    fn business_id(&self, text: &str) -> Result<String, KeyError>;
    /// The region whose numbering plan (libphonenumber's metadata, through
    /// the `phonenumber` crate) phone keys must belong to.
    fn phone_region(&self) -> phonenumber::country::Id;
}

/// Brazil: CPF (11 digits), CNPJ (14 characters), phones under +55.
#[derive(Debug, Clone, Copy, Default)]
pub struct Brazil;

/// Punctuation people write ids with ("123.456.789-09", "12.345.678/0001-95").
fn strip_id_punctuation(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '.' | '-' | '/')).collect()
}

impl CountryProfile for Brazil {
    fn code(&self) -> &'static str {
        "BR"
    }

    fn person_id(&self, text: &str) -> Result<String, KeyError> {
        let digits = strip_id_punctuation(text);
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KeyError::PersonIdLength(11));
        }
        let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        // All-equal sequences pass the arithmetic but are not issued.
        if d.iter().all(|&x| x == d[0]) {
            return Err(KeyError::PersonIdCheckDigit);
        }
        let check = |len: usize| -> u32 {
            let sum: u32 = (0..len).map(|i| d[i] * (len as u32 + 1 - i as u32)).sum();
            (sum * 10) % 11 % 10
        };
        if check(9) != d[9] || check(10) != d[10] {
            return Err(KeyError::PersonIdCheckDigit);
        }
        Ok(digits)
    }

    fn business_id(&self, text: &str) -> Result<String, KeyError> {
        let id = strip_id_punctuation(text).to_ascii_uppercase();
        let bytes = id.as_bytes();
        if bytes.len() != 14
            || !bytes[..12].iter().all(u8::is_ascii_alphanumeric)
            || !bytes[12..].iter().all(u8::is_ascii_digit)
        {
            return Err(KeyError::BusinessIdFormat(14));
        }
        // Each character counts as its ASCII code minus 48 ('0' = 0, 'A' = 17),
        // which keeps numeric CNPJs valid as before.
        let value: Vec<u32> = bytes.iter().map(|&b| u32::from(b) - 48).collect();
        if bytes.iter().all(|&b| b == bytes[0]) {
            return Err(KeyError::BusinessIdCheckDigit);
        }
        let check = |len: usize| -> u32 {
            let sum: u32 = (0..len).map(|i| value[i] * (2 + ((len - 1 - i) as u32 % 8))).sum();
            let r = sum % 11;
            if r < 2 { 0 } else { 11 - r }
        };
        if check(12) != value[12] || check(13) != value[13] {
            return Err(KeyError::BusinessIdCheckDigit);
        }
        Ok(id)
    }

    fn phone_region(&self) -> phonenumber::country::Id {
        phonenumber::country::Id::BR
    }
}

/// India: Aadhaar (12 digits, Verhoeff check digit) for people, GSTIN (15
/// characters, mod-36 check character) for businesses, phones under +91 —
/// the keys of a UPI-style directory. A second real profile, so that what
/// differs per country is proven to sit behind [`CountryProfile`].
#[derive(Debug, Clone, Copy, Default)]
pub struct India;

/// Verhoeff's dihedral-group tables (multiplication, permutation).
const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// Whether `digits` (ASCII digits, check digit last) pass Verhoeff's check.
pub(crate) fn verhoeff_valid(digits: &[u8]) -> bool {
    let mut c = 0_u8;
    for (i, &d) in digits.iter().rev().enumerate() {
        c = VERHOEFF_D[usize::from(c)][usize::from(VERHOEFF_P[i % 8][usize::from(d - b'0')])];
    }
    c == 0
}

/// The GSTIN check character of its first 14 characters (GSTN's mod-36
/// scheme: digits 0-9 then letters A-Z, weights alternating 1 and 2).
pub(crate) fn gstin_check(first14: &[u8]) -> u8 {
    const CHARS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let value = |b: u8| CHARS.iter().position(|&c| c == b).expect("checked alphanumeric") as u32;
    let sum: u32 = first14
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let product = value(b) * if i % 2 == 0 { 1 } else { 2 };
            product / 36 + product % 36
        })
        .sum();
    CHARS[((36 - sum % 36) % 36) as usize]
}

impl CountryProfile for India {
    fn code(&self) -> &'static str {
        "IN"
    }

    /// Aadhaar: 12 digits, the first 2-9, the last a Verhoeff check digit;
    /// written with spaces or hyphens between groups of four.
    fn person_id(&self, text: &str) -> Result<String, KeyError> {
        let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with(['0', '1']) {
            return Err(KeyError::PersonIdLength(12));
        }
        if !verhoeff_valid(digits.as_bytes()) {
            return Err(KeyError::PersonIdCheckDigit);
        }
        Ok(digits)
    }

    /// GSTIN: state code (2 digits), the holder's PAN (5 letters, 4
    /// digits, a letter), entity number, `Z`, check character.
    fn business_id(&self, text: &str) -> Result<String, KeyError> {
        let id = text.trim().to_ascii_uppercase();
        let b = id.as_bytes();
        let shape = b.len() == 15
            && b[..2].iter().all(u8::is_ascii_digit)
            && b[2..7].iter().all(u8::is_ascii_uppercase)
            && b[7..11].iter().all(u8::is_ascii_digit)
            && b[11].is_ascii_uppercase()
            && (b[12].is_ascii_uppercase() || (b'1'..=b'9').contains(&b[12]))
            && b[13] == b'Z'
            && b[14].is_ascii_alphanumeric();
        if !shape {
            return Err(KeyError::BusinessIdFormat(15));
        }
        if gstin_check(&b[..14]) != b[14] {
            return Err(KeyError::BusinessIdCheckDigit);
        }
        Ok(id)
    }

    fn phone_region(&self) -> phonenumber::country::Id {
        phonenumber::country::Id::IN
    }
}

/// A configured country: one of [`PROFILES`], named by its code in
/// configuration files and on the command line.
#[derive(Clone, Copy)]
pub struct Country(&'static dyn CountryProfile);

impl Country {
    /// The default, Brazil (`BR`).
    pub const DEFAULT: Country = Country(&Brazil);

    /// The profile with ISO code `code` (case-insensitive).
    pub fn from_code(code: &str) -> Result<Country, UnknownCountry> {
        PROFILES
            .iter()
            .find(|p| p.code().eq_ignore_ascii_case(code.trim()))
            .map(|p| Country(*p))
            .ok_or_else(|| UnknownCountry(code.chars().take(8).collect()))
    }

    pub fn profile(self) -> &'static dyn CountryProfile {
        self.0
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }
}

impl Default for Country {
    fn default() -> Country {
        Country::DEFAULT
    }
}

impl std::fmt::Debug for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl PartialEq for Country {
    fn eq(&self, other: &Country) -> bool {
        self.code() == other.code()
    }
}

impl Eq for Country {}

impl std::str::FromStr for Country {
    type Err = UnknownCountry;
    fn from_str(code: &str) -> Result<Country, UnknownCountry> {
        Country::from_code(code)
    }
}

impl CountryProfile for Country {
    fn code(&self) -> &'static str {
        self.0.code()
    }
    fn person_id(&self, text: &str) -> Result<String, KeyError> {
        self.0.person_id(text)
    }
    fn business_id(&self, text: &str) -> Result<String, KeyError> {
        self.0.business_id(text)
    }
    fn phone_region(&self) -> phonenumber::country::Id {
        self.0.phone_region()
    }
}

impl serde::Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Country, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Country::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// A country code no profile answers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown country {0:?}: this build has profiles for {known}", known = known_codes())]
pub struct UnknownCountry(String);

fn known_codes() -> String {
    PROFILES.iter().map(|p| p.code()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, StrDeserializer};

    fn from_config(code: &str) -> Result<Country, Error> {
        let deserializer: StrDeserializer<'_, Error> = code.into_deserializer();
        <Country as serde::Deserialize>::deserialize(deserializer)
    }

    #[test]
    fn countries_are_chosen_by_code_and_unknown_ones_are_refused_by_name() {
        assert_eq!(Country::from_code("br").unwrap().code(), "BR");
        assert_eq!(Country::default(), Country::from_code("BR").unwrap());
        let error = Country::from_code("ZZ").unwrap_err().to_string();
        assert!(error.contains("\"ZZ\"") && error.contains("BR, IN"), "{error}");
        assert_eq!(Country::from_code("in").unwrap().code(), "IN");
        assert_eq!(from_config("BR").unwrap().profile().code(), "BR");
        let error = from_config("XX").unwrap_err().to_string();
        assert!(error.contains("unknown country \"XX\""), "{error}");
    }
}
