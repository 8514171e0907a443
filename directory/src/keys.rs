//! Key types, their validation and their one canonical form.
//!
//! National ids and phone country codes are checked by the country profile
//! the switch is configured with ([`Country`], see `crate::country`). Phones are E.164, emails are lowercased
//! and bounded, random keys are UUIDs the directory makes.

pub use crate::country::{Brazil, Country, CountryProfile};
pub use crate::key_error::{EMAIL_LEN_MAX, KeyError};
use std::fmt;

/// The kinds of key a payer can pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum KeyType {
    /// A person's national id (CPF in Brazil).
    PersonId,
    /// A business's national id (CNPJ in Brazil).
    BusinessId,
    /// A phone number in E.164 form.
    Phone,
    Email,
    /// A UUID made by the directory.
    Random,
}

/// The one name table of key types, used by the wire mapping (the
/// `ponte.v1.KeyType` value names), the CLI, the disbursement CSV reader and
/// the fuzz targets: (type, wire name, name in files and commands, other
/// names files may use). A new key type is added here and in the enum.
const KEY_TYPE_NAMES: [(KeyType, &str, &str, &[&str]); 5] = [
    (KeyType::PersonId, "PERSON_ID", "person_id", &["cpf"]),
    (KeyType::BusinessId, "BUSINESS_ID", "business_id", &["cnpj"]),
    (KeyType::Phone, "PHONE", "phone", &[]),
    (KeyType::Email, "EMAIL", "email", &[]),
    (KeyType::Random, "RANDOM", "random", &[]),
];

impl KeyType {
    /// Every key type, in the order of the name table.
    pub const ALL: [KeyType; KEY_TYPE_NAMES.len()] = {
        let mut all = [KeyType::PersonId; KEY_TYPE_NAMES.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = KEY_TYPE_NAMES[i].0;
            i += 1;
        }
        all
    };

    fn names(self) -> &'static (KeyType, &'static str, &'static str, &'static [&'static str]) {
        KEY_TYPE_NAMES.iter().find(|names| names.0 == self).expect("every key type is in the name table")
    }

    /// The wire name, as the `ponte.v1.KeyType` value is called ("PERSON_ID").
    pub fn as_str(self) -> &'static str {
        self.names().1
    }

    /// The name in files and commands ("person_id").
    pub fn name(self) -> &'static str {
        self.names().2
    }

    /// Reads any name of a key type (wire name, file name or another name
    /// such as "cpf"), ignoring case, surrounding spaces, and `-` for `_`
    /// (`person-id`, as command lines spell it).
    pub fn from_name(text: &str) -> Option<KeyType> {
        let text = text.trim();
        // Without allocating: every key a payment names is read through here.
        let same = |name: &str| {
            text.len() == name.len()
                && text.bytes().zip(name.bytes()).all(|(t, n)| {
                    let t = if t == b'-' { b'_' } else { t };
                    t.eq_ignore_ascii_case(&n)
                })
        };
        KEY_TYPE_NAMES
            .iter()
            .find(|(_, wire, name, others)| same(wire) || same(name) || others.iter().any(|other| same(other)))
            .map(|names| names.0)
    }
}

/// A valid key in canonical form. Its `Debug` never shows the value:
/// keys are personal data.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Key {
    kind: KeyType,
    value: String,
}

impl Key {
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The canonical value. Personal data: do not log it.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// A form safe for logs and error messages.
    pub fn masked(&self) -> String {
        mask(&self.value)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, {})", self.kind.as_str(), self.masked())
    }
}

/// Keeps the first and last two characters of a value (at most a third of
/// it), stars in between: enough to tell keys apart in a log, not to read one.
pub fn mask(value: &str) -> String {
    let len = value.chars().count();
    let keep = (len / 6).min(2);
    let mut masked = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        masked.push(if i < keep || i + keep >= len { c } else { '*' });
    }
    masked
}

/// Parses `text` as a key of `kind`, into its canonical form.
/// Random keys cannot be parsed for creation (see [`KeyError::RandomNotChosen`]);
/// use [`parse_existing`] to name one that exists.
pub fn parse(profile: &dyn CountryProfile, kind: KeyType, text: &str) -> Result<Key, KeyError> {
    let value = match kind {
        KeyType::PersonId => profile.person_id(text)?,
        KeyType::BusinessId => profile.business_id(text)?,
        KeyType::Phone => phone(profile, text)?,
        KeyType::Email => email(text)?,
        KeyType::Random => return Err(KeyError::RandomNotChosen),
    };
    Ok(Key { kind, value })
}

/// Parses a key that should already exist, random keys included.
pub fn parse_existing(profile: &dyn CountryProfile, kind: KeyType, text: &str) -> Result<Key, KeyError> {
    match kind {
        KeyType::Random => Ok(Key { kind, value: random(text)? }),
        _ => parse(profile, kind, text),
    }
}

/// Makes a random key from 16 random bytes (UUID version 4). The caller
/// supplies the randomness so the directory stays deterministic.
pub fn random_key(bytes: [u8; 16]) -> Key {
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let value = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
    Key { kind: KeyType::Random, value }
}

fn phone(profile: &dyn CountryProfile, text: &str) -> Result<String, KeyError> {
    let digits = text.strip_prefix('+').ok_or(KeyError::PhoneFormat)?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(KeyError::PhoneFormat);
    }
    if !profile.phone_country(digits) {
        return Err(KeyError::PhoneCountry);
    }
    Ok(format!("+{digits}"))
}

fn email(text: &str) -> Result<String, KeyError> {
    if text.chars().count() > EMAIL_LEN_MAX {
        return Err(KeyError::EmailTooLong);
    }
    let lower = text.to_lowercase();
    let (local, domain) = lower.split_once('@').ok_or(KeyError::EmailFormat)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !local_ok || !domain_ok {
        return Err(KeyError::EmailFormat);
    }
    Ok(lower)
}

fn random(text: &str) -> Result<String, KeyError> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        });
    if !shape_ok {
        return Err(KeyError::RandomFormat);
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(kind: KeyType, text: &str) -> String {
        parse(&Brazil, kind, text).unwrap_or_else(|e| panic!("{text:?}: {e}")).value().to_owned()
    }

    fn err(kind: KeyType, text: &str) -> KeyError {
        parse(&Brazil, kind, text).expect_err(text)
    }

    #[test]
    fn person_ids() {
        assert_eq!(ok(KeyType::PersonId, "529.982.247-25"), "52998224725");
        assert_eq!(ok(KeyType::PersonId, "11144477735"), "11144477735");
        assert_eq!(err(KeyType::PersonId, "52998224724"), KeyError::PersonIdCheckDigit);
        assert_eq!(err(KeyType::PersonId, "11111111111"), KeyError::PersonIdCheckDigit);
        assert_eq!(err(KeyType::PersonId, "5299822472"), KeyError::PersonIdLength(11));
        assert_eq!(err(KeyType::PersonId, "5299822472a"), KeyError::PersonIdLength(11));
    }

    #[test]
    fn business_ids_numeric_and_alphanumeric() {
        assert_eq!(ok(KeyType::BusinessId, "11.222.333/0001-81"), "11222333000181");
        assert_eq!(err(KeyType::BusinessId, "11222333000182"), KeyError::BusinessIdCheckDigit);
        // The Receita Federal's published alphanumeric example.
        assert_eq!(ok(KeyType::BusinessId, "12.ABC.345/01DE-35"), "12ABC34501DE35");
        assert_eq!(ok(KeyType::BusinessId, "12abc34501de35"), "12ABC34501DE35");
        assert_eq!(err(KeyType::BusinessId, "12ABC34501DE36"), KeyError::BusinessIdCheckDigit);
        assert_eq!(err(KeyType::BusinessId, "12ABC34501DEA5"), KeyError::BusinessIdFormat(14));
        assert_eq!(err(KeyType::BusinessId, "00000000000000"), KeyError::BusinessIdCheckDigit);
    }

    #[test]
    fn phones() {
        assert_eq!(ok(KeyType::Phone, "+5561988880000"), "+5561988880000");
        assert_eq!(err(KeyType::Phone, "5561988880000"), KeyError::PhoneFormat);
        assert_eq!(err(KeyType::Phone, "+55 61 98888 0000"), KeyError::PhoneFormat);
        assert_eq!(err(KeyType::Phone, "+0561988880000"), KeyError::PhoneFormat);
        assert_eq!(err(KeyType::Phone, "+1234567890123456"), KeyError::PhoneFormat);
        assert_eq!(err(KeyType::Phone, "+14155550123"), KeyError::PhoneCountry);
    }

    #[test]
    fn emails() {
        assert_eq!(ok(KeyType::Email, "Maria.Silva@Example.COM.br"), "maria.silva@example.com.br");
        for bad in [
            "maria",
            "maria@",
            "@example.com",
            "maria@example",
            "ma ria@example.com",
            "maria@@example.com",
            "maria..s@example.com",
            "maria@-example.com",
            "maria@example.c0m",
        ] {
            assert_eq!(err(KeyType::Email, bad), KeyError::EmailFormat, "{bad}");
        }
        assert_eq!(err(KeyType::Email, &format!("{}@example.com", "a".repeat(70))), KeyError::EmailTooLong);
    }

    #[test]
    fn random_keys_are_made_not_chosen() {
        assert_eq!(err(KeyType::Random, "123e4567-e89b-42d3-a456-426614174000"), KeyError::RandomNotChosen);
        let key = random_key([0xab; 16]);
        assert_eq!(key.value(), "abababab-abab-4bab-abab-abababababab");
        assert_eq!(parse_existing(&Brazil, KeyType::Random, key.value()).unwrap(), key);
        assert_eq!(
            parse_existing(&Brazil, KeyType::Random, "ABABABAB-abab-4bab-abab-abababababab"),
            Err(KeyError::RandomFormat)
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let key = parse(&Brazil, KeyType::Email, "maria.silva@example.com").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("maria.silva@example.com") && !shown.contains("silva"), "{shown}");
        let error = parse(&Brazil, KeyType::PersonId, "52998224724").unwrap_err().to_string();
        assert!(!error.contains("5299822472"), "{error}");
    }

    fn cpf_check_digits(base: &[u32; 9]) -> String {
        let mut d: Vec<u32> = base.to_vec();
        for len in [9, 10] {
            let sum: u32 = (0..len).map(|i| d[i] * (len as u32 + 1 - i as u32)).sum();
            d.push((sum * 10) % 11 % 10);
        }
        d.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect()
    }

    proptest! {
        /// Every CPF with correct check digits is accepted, and a CPF with
        /// one digit changed is accepted exactly when an independent
        /// computation of its check digits agrees (mod 11 folds 10 into 0,
        /// so a few single-digit errors are valid CPFs too).
        #[test]
        fn cpf_validation_agrees_with_an_independent_computation(base in prop::array::uniform9(0_u32..10), pos in 0_usize..11, delta in 1_u32..10) {
            let cpf = cpf_check_digits(&base);
            prop_assume!(!cpf.bytes().all(|b| b == cpf.as_bytes()[0]));
            prop_assert_eq!(Brazil.person_id(&cpf), Ok(cpf.clone()));
            let mut digits: Vec<u32> = cpf.bytes().map(|b| u32::from(b - b'0')).collect();
            digits[pos] = (digits[pos] + delta) % 10;
            let wrong: String = digits.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect();
            let wrong_base: [u32; 9] = digits[..9].try_into().unwrap();
            let valid = cpf_check_digits(&wrong_base) == wrong && !wrong.bytes().all(|b| b == wrong.as_bytes()[0]);
            prop_assert_eq!(Brazil.person_id(&wrong).is_ok(), valid);
        }

        #[test]
        fn parsing_never_panics(kind in prop::sample::select(KeyType::ALL.to_vec()), text in "\\PC{0,90}") {
            let _ = parse_existing(&Brazil, kind, &text);
        }

        #[test]
        fn canonical_forms_are_fixed_points(local in "[a-z0-9]{1,20}", domain in "[a-z]{1,20}") {
            let email = format!("{local}@{domain}.com");
            let once = parse(&Brazil, KeyType::Email, &email.to_uppercase()).unwrap();
            let twice = parse(&Brazil, KeyType::Email, once.value()).unwrap();
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn every_key_type_has_one_entry_in_the_name_table() {
        assert_eq!(KeyType::ALL.len(), super::KEY_TYPE_NAMES.len());
        for kind in KeyType::ALL {
            assert_eq!(KeyType::ALL.iter().filter(|k| **k == kind).count(), 1);
            assert_eq!(KeyType::from_name(kind.as_str()), Some(kind));
            assert_eq!(KeyType::from_name(kind.name()), Some(kind));
            assert_eq!(KeyType::from_name(&format!(" {} ", kind.name().to_uppercase())), Some(kind));
        }
        assert_eq!(KeyType::from_name("cpf"), Some(KeyType::PersonId));
        assert_eq!(KeyType::from_name("business-id"), Some(KeyType::BusinessId));
        assert_eq!(KeyType::from_name("passport"), None);
    }
}
