//! Key types, their validation and their one canonical form: one real
//! key has exactly one canonical form, the same for registering and for
//! looking up, so a key cannot be registered twice under two spellings.
//!
//! The rules every type shares (docs/PAYMENTS.md "Keys"):
//! - whitespace around a key is dropped; inside it only where the type's
//!   written form groups characters (phones);
//! - a key is ASCII: any other character is refused ([`KeyError::NotAscii`]),
//!   before any case folding, so a look-alike letter (the Kelvin sign, a
//!   Cyrillic `а`) or a full-width digit never turns into another key;
//! - the punctuation people write a key with is accepted and dropped
//!   (`529.982.247-25`, `+55 (61) 98888-0000`), letters are folded to the
//!   type's case (emails and random keys lower, business ids upper).
//!
//! Per type: national ids by the configured country profile ([`Country`],
//! `crate::country`) with their check digits; phones by the country's
//! numbering plan (libphonenumber's metadata through the `phonenumber`
//! crate), mobile numbers only, canonically E.164; emails by RFC 5321/5322
//! (dot-atom names, DNS labels of at most 63 characters, punycode labels)
//! within the DICT's 77 characters; random keys are UUIDs the directory makes.

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

    /// A key used only as a position in key order (where a page of a
    /// participant's keys starts), unchecked: never registered or looked up.
    pub fn page_bound(kind: KeyType, value: String) -> Key {
        Key { kind, value }
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
    let text = prepare(text)?;
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
        KeyType::Random => Ok(Key { kind, value: random(prepare(text)?)? }),
        _ => parse(profile, kind, text),
    }
}

/// The rules every key type shares: surrounding whitespace (any Unicode
/// white space) dropped, then ASCII only.
fn prepare(text: &str) -> Result<&str, KeyError> {
    let text = text.trim();
    if text.is_ascii() { Ok(text) } else { Err(KeyError::NotAscii) }
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

/// Longest phone text read (digits and grouping): E.164 has at most 15
/// digits; the rest is room for a trunk prefix and separators.
const PHONE_TEXT_MAX: usize = 32;

/// A phone key: `+`, country code, number; digits may be grouped by spaces,
/// `-`, `.` or parentheses. The number must be valid in the profile's
/// numbering plan and a mobile number there; its canonical form is E.164.
/// A national trunk prefix written after the country code (`+55 0 61 …`)
/// is part of no E.164 number: the plan's rules drop it, so the key is the
/// same as without it.
fn phone(profile: &dyn CountryProfile, text: &str) -> Result<String, KeyError> {
    if canonical_mobile(profile.phone_region(), text) {
        return Ok(text.to_owned());
    }
    phone_by_parsing(profile, text)
}

/// A region's plan, compiled for one question: is this text already the
/// canonical key of a mobile number there? (`None`: the plan cannot tell
/// that without parsing, e.g. a country code several regions share.)
struct CanonicalMobile {
    country_code: String,
    lengths: Vec<u16>,
    general: regex::Regex,
    mobile: regex::Regex,
    /// Types libphonenumber tells before mobile (premium rate, toll free,
    /// shared cost, VoIP, personal, pager, UAN, voicemail), as one
    /// alternation: a number it matches is not a mobile number even if the
    /// mobile pattern does. `None` when the plan has none of them.
    before_mobile: Option<regex::Regex>,
}

static CANONICAL_MOBILE: std::sync::OnceLock<Vec<(phonenumber::country::Id, Option<CanonicalMobile>)>> =
    std::sync::OnceLock::new();

/// Whether `text` is, as it stands, the canonical key (E.164) of a valid
/// mobile number of `region`. The fast path for the form every key is
/// stored and sent in: 50 ns instead of the ~4 µs of a full parse, which
/// payments naming a key pay on every call. Exactly the full parse's
/// answer where it says yes (property test
/// `the_fast_path_agrees_with_the_full_parse`); anything else is parsed.
fn canonical_mobile(region: phonenumber::country::Id, text: &str) -> bool {
    let plans = CANONICAL_MOBILE.get_or_init(|| {
        let regions = crate::country::PROFILES.iter().map(|p| p.phone_region());
        regions.map(|region| (region, CanonicalMobile::compile(region))).collect()
    });
    let Some((_, Some(plan))) = plans.iter().find(|(r, _)| *r == region) else { return false };
    let Some(national) = text.strip_prefix('+').and_then(|t| t.strip_prefix(plan.country_code.as_str())) else {
        return false;
    };
    national.bytes().all(|b| b.is_ascii_digit())
        && !national.starts_with('0')
        && plan.lengths.contains(&(national.len() as u16))
        && plan.general.is_match(national)
        && plan.mobile.is_match(national)
        && !plan.before_mobile.as_ref().is_some_and(|re| re.is_match(national))
}

impl CanonicalMobile {
    fn compile(region: phonenumber::country::Id) -> Option<CanonicalMobile> {
        let database = &*phonenumber::metadata::DATABASE;
        let metadata = database.by_id(region.as_ref())?;
        let code = metadata.country_code();
        // Only where the country code is this region's alone.
        if database.by_code(&code).is_none_or(|regions| regions.len() != 1) {
            return None;
        }
        let anchored = |d: &phonenumber::metadata::Descriptor| {
            regex::Regex::new(&format!("^(?x:{})$", d.national_number().as_str())).ok()
        };
        let any_of = |ds: &[&phonenumber::metadata::Descriptor]| {
            let alternatives: Vec<String> =
                ds.iter().map(|d| format!("(?x:{})", d.national_number().as_str())).collect();
            regex::Regex::new(&format!("^(?:{})$", alternatives.join("|"))).ok()
        };
        let types = metadata.descriptors();
        let mobile = types.mobile()?;
        let lengths = if mobile.possible_length().is_empty() {
            types.general().possible_length().to_vec()
        } else {
            mobile.possible_length().to_vec()
        };
        let before = [
            types.premium_rate(),
            types.toll_free(),
            types.shared_cost(),
            types.voip(),
            types.personal_number(),
            types.pager(),
            types.uan(),
            types.voicemail(),
        ];
        Some(CanonicalMobile {
            country_code: code.to_string(),
            lengths,
            general: anchored(types.general())?,
            mobile: anchored(mobile)?,
            before_mobile: {
                let before: Vec<_> = before.into_iter().flatten().collect();
                if before.is_empty() { None } else { Some(any_of(&before)?) }
            },
        })
    }
}

fn phone_by_parsing(profile: &dyn CountryProfile, text: &str) -> Result<String, KeyError> {
    let rest = text.strip_prefix('+').ok_or(KeyError::PhoneFormat)?;
    let digits = rest.bytes().filter(u8::is_ascii_digit).count();
    if text.len() > PHONE_TEXT_MAX
        || !(8..=17).contains(&digits)
        || !rest.bytes().all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
        || !rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(KeyError::PhoneFormat);
    }
    let number = phonenumber::parse(None, text).map_err(|_| KeyError::PhoneFormat)?;
    if number.country().id() != Some(profile.phone_region()) {
        // A country code of another country, or one no region answers to.
        return Err(if phonenumber::is_valid(&number) { KeyError::PhoneCountry } else { KeyError::PhoneNotInPlan });
    }
    if !phonenumber::is_valid(&number) {
        return Err(KeyError::PhoneNotInPlan);
    }
    match number.number_type(&phonenumber::metadata::DATABASE) {
        phonenumber::Type::Mobile | phonenumber::Type::FixedLineOrMobile => {}
        _ => return Err(KeyError::PhoneNotMobile),
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Characters RFC 5322 allows in a dot-atom besides letters and digits.
const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// An email key (ASCII, checked by [`prepare`] before any case folding):
/// a dot-atom name of at most 64 characters (RFC 5321), `@`, a domain of
/// DNS labels, 77 characters in all (the DICT's limit); lowercased.
/// Quoted names, comments and address literals are not keys.
fn email(text: &str) -> Result<String, KeyError> {
    if text.len() > EMAIL_LEN_MAX {
        return Err(KeyError::EmailTooLong);
    }
    let lower = text.to_ascii_lowercase();
    let (local, domain) = lower.split_once('@').ok_or(KeyError::EmailFormat)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
        });
    if !local_ok {
        return Err(KeyError::EmailFormat);
    }
    if !domain_ok(domain) {
        return Err(KeyError::EmailDomain);
    }
    Ok(lower)
}

/// A host name of at least two DNS labels (RFC 1035/5890, lowercase
/// ASCII): each 1 to 63 letters, digits and inner hyphens; a label with
/// hyphens in its 3rd and 4th places must be an IDNA A-label (`xn--` and
/// valid punycode of a name with non-ASCII letters); the top-level domain
/// letters only, or an A-label.
fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let ldh = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let a_label = |l: &str| {
        l.strip_prefix("xn--").is_some_and(|encoded| {
            idna::punycode::decode_to_string(encoded).is_some_and(|u| !u.is_empty() && !u.is_ascii())
        })
    };
    let label_ok = |l: &str| ldh(l) && (l.get(2..4) != Some("--") || a_label(l));
    let tld_ok = |l: &str| (l.len() >= 2 && l.bytes().all(|b| b.is_ascii_lowercase())) || a_label(l);
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| label_ok(l))
        && labels.last().is_some_and(|tld| tld_ok(tld))
        && (!domain.contains("xn--") || idna::domain_to_unicode(domain).1.is_ok())
}

/// A random key: a UUID, either case, kept lowercase.
fn random(text: &str) -> Result<String, KeyError> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if !shape_ok {
        return Err(KeyError::RandomFormat);
    }
    Ok(text.to_ascii_lowercase())
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
    fn phones_hold_to_the_numbering_plan() {
        let canonical = "+5561988880000";
        // One real number, one key, however it is written.
        for same in [
            "+5561988880000",
            "+55 61 98888 0000",
            "+55 (61) 98888-0000",
            "+55.61.98888.0000",
            " +5561988880000\t",
            "+55 061 98888 0000", // the national trunk prefix after the country code
            "+55061988880000",
            "+55 0 61 9 8888-0000",
        ] {
            assert_eq!(ok(KeyType::Phone, same), canonical, "{same:?}");
        }
        assert_eq!(ok(KeyType::Phone, "+5511987654321"), "+5511987654321");
        // Not in Brazil's plan: an unassigned area code, an 8-digit mobile,
        // a number too long or too short.
        assert_eq!(err(KeyType::Phone, "+5520988880000"), KeyError::PhoneNotInPlan);
        assert_eq!(err(KeyType::Phone, "+556198888000"), KeyError::PhoneNotInPlan);
        assert_eq!(err(KeyType::Phone, "+55619888800001"), KeyError::PhoneNotInPlan);
        assert_eq!(err(KeyType::Phone, "+55619888"), KeyError::PhoneNotInPlan);
        // A landline is a valid number but not a key.
        assert_eq!(err(KeyType::Phone, "+556133334444"), KeyError::PhoneNotMobile);
        // Another country's number.
        assert_eq!(err(KeyType::Phone, "+14155550123"), KeyError::PhoneCountry);
        assert_eq!(err(KeyType::Phone, "+919876543210"), KeyError::PhoneCountry);
        // Not in international form, or with anything but digits and grouping.
        for bad in [
            "5561988880000",
            "061988880000",
            "+0561988880000",
            "+",
            "++5561988880000",
            "+55 61 98888 0000 ext 12",
            "+55-61-FLOWERS",
            "+55/61/988880000",
            "+1234567890123456789",
        ] {
            assert!(
                matches!(err(KeyType::Phone, bad), KeyError::PhoneFormat | KeyError::PhoneNotInPlan),
                "{bad:?}: {:?}",
                err(KeyType::Phone, bad)
            );
        }
        assert_eq!(err(KeyType::Phone, "5561988880000"), KeyError::PhoneFormat);
        // Look-alikes: full-width digits, a non-ASCII space inside.
        assert_eq!(err(KeyType::Phone, "+55\u{ff16}\u{ff11}988880000"), KeyError::NotAscii);
        assert_eq!(err(KeyType::Phone, "+55\u{a0}61988880000"), KeyError::NotAscii);
    }

    #[test]
    fn emails_by_rfc_5321_5322_and_the_dict_limits() {
        assert_eq!(ok(KeyType::Email, "Maria.Silva@Example.COM.br"), "maria.silva@example.com.br");
        assert_eq!(ok(KeyType::Email, " maria@example.com "), "maria@example.com");
        // RFC 5322 dot-atom characters.
        assert_eq!(ok(KeyType::Email, "o'neil+pix_1{x}=ok#~@example.com"), "o'neil+pix_1{x}=ok#~@example.com");
        // Labels of up to 63 characters; 64 is over DNS's limit.
        let label63 = "a".repeat(63);
        assert_eq!(ok(KeyType::Email, &format!("m@{label63}.br")), format!("m@{label63}.br"));
        assert_eq!(err(KeyType::Email, &format!("m@{}.br", "a".repeat(64))), KeyError::EmailDomain);
        // Internationalised domains in punycode, the top-level domain too
        // (.рф, .中国), and internationalised labels.
        assert_eq!(ok(KeyType::Email, "maria@example.xn--p1ai"), "maria@example.xn--p1ai");
        assert_eq!(ok(KeyType::Email, "maria@example.XN--FIQS8S"), "maria@example.xn--fiqs8s");
        assert_eq!(ok(KeyType::Email, "maria@xn--bcher-kva.com.br"), "maria@xn--bcher-kva.com.br");
        for bad in [
            "maria@",
            "maria@example",
            "maria@-example.com",
            "maria@example-.com",
            "maria@example.c0m",
            "maria@example..com",
            "maria@example.com.",
            "maria@ab--cd.com",        // hyphens in 3rd and 4th place: reserved for A-labels
            "maria@xn--.com",          // an empty A-label
            "maria@xn--abc-.com",      // ends with a hyphen
            "maria@xn--a.com",         // punycode of nothing non-ASCII
            "maria@[127.0.0.1]",       // address literals are not keys
            "maria@example.com@x.com", // a second @
        ] {
            assert_eq!(err(KeyType::Email, bad), KeyError::EmailDomain, "{bad}");
        }
        for bad in [
            "maria",
            "@example.com",
            "ma ria@example.com",
            "maria..s@example.com",
            ".maria@example.com",
            "maria.@example.com",
            "\"maria silva\"@example.com",
            "maria(comment)@example.com",
            &format!("{}@example.com", "a".repeat(65)),
        ] {
            assert_eq!(err(KeyType::Email, bad), KeyError::EmailFormat, "{bad}");
        }
        assert_eq!(err(KeyType::Email, &format!("{}@example.com", "a".repeat(70))), KeyError::EmailTooLong);
        // ASCII is checked before case folding: the Kelvin sign (which
        // lowercases to "k") and a Cyrillic "а" are refused, never mapped.
        assert_eq!(err(KeyType::Email, "\u{212a}ate@example.com"), KeyError::NotAscii);
        assert_eq!(err(KeyType::Email, "m\u{430}ria@example.com"), KeyError::NotAscii);
        assert_eq!(err(KeyType::Email, "maria@exämple.com"), KeyError::NotAscii);
    }

    #[test]
    fn whitespace_and_look_alikes_are_handled_alike_for_every_type() {
        let samples = [
            (KeyType::PersonId, "529.982.247-25"),
            (KeyType::BusinessId, "11.222.333/0001-81"),
            (KeyType::Phone, "+55 61 98888-0000"),
            (KeyType::Email, "Maria@Example.com"),
        ];
        for (kind, text) in samples {
            let canonical = ok(kind, text);
            // Surrounding white space of any kind is dropped.
            for padded in [format!(" {text} "), format!("\t{text}\n"), format!("\u{a0}{text}\u{3000}")] {
                assert_eq!(ok(kind, &padded), canonical, "{kind:?} {padded:?}");
            }
            // Any non-ASCII character inside is refused, whatever the type.
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(text.len() / 2, '\u{200b}'); // zero-width space
            let with_invisible: String = chars.into_iter().collect();
            assert_eq!(err(kind, &with_invisible), KeyError::NotAscii, "{kind:?}");
            // Its first letter or digit in full width (U+FF01.. mirror ASCII).
            let first = text.find(|c: char| c.is_ascii_alphanumeric()).unwrap();
            let wide = char::from_u32(u32::from(text.as_bytes()[first]) + 0xfee0).unwrap();
            let fullwidth = format!("{}{wide}{}", &text[..first], &text[first + 1..]);
            assert_eq!(err(kind, &fullwidth), KeyError::NotAscii, "{kind:?}");
        }
        let random = random_key([7; 16]);
        let upper = format!("\u{a0}{} ", random.value().to_uppercase());
        assert_eq!(parse_existing(&Brazil, KeyType::Random, &upper).unwrap(), random);
        assert_eq!(
            parse_existing(&Brazil, KeyType::Random, &random.value().replace('0', "\u{ff10}")),
            Err(KeyError::NotAscii)
        );
    }

    #[test]
    fn random_keys_are_made_not_chosen() {
        assert_eq!(err(KeyType::Random, "123e4567-e89b-42d3-a456-426614174000"), KeyError::RandomNotChosen);
        let key = random_key([0xab; 16]);
        assert_eq!(key.value(), "abababab-abab-4bab-abab-abababababab");
        assert_eq!(parse_existing(&Brazil, KeyType::Random, key.value()).unwrap(), key);
        // Either case names the same key.
        assert_eq!(parse_existing(&Brazil, KeyType::Random, "ABABABAB-abab-4bab-abab-abababababab").unwrap(), key);
        assert_eq!(
            parse_existing(&Brazil, KeyType::Random, "abababab-abab-4bab-abab-ababababababa"),
            Err(KeyError::RandomFormat)
        );
        assert_eq!(
            parse_existing(&Brazil, KeyType::Random, "abababab_abab-4bab-abab-abababababab"),
            Err(KeyError::RandomFormat)
        );
    }

    #[test]
    fn india_aadhaar_gstin_and_plus_91_mobiles() {
        use crate::country::India;
        let india = |kind, text: &str| parse(&India, kind, text);
        // Aadhaar: Verhoeff's check digit.
        assert_eq!(india(KeyType::PersonId, "2341 2341 2346").unwrap().value(), "234123412346");
        assert_eq!(india(KeyType::PersonId, "4991-2345-6783").unwrap().value(), "499123456783");
        assert_eq!(india(KeyType::PersonId, "234123412345"), Err(KeyError::PersonIdCheckDigit));
        // Verhoeff catches every swap of neighbours, which mod-11 schemes miss.
        assert_eq!(india(KeyType::PersonId, "234123412364"), Err(KeyError::PersonIdCheckDigit));
        assert_eq!(india(KeyType::PersonId, "134123412346"), Err(KeyError::PersonIdLength(12)));
        assert_eq!(india(KeyType::PersonId, "52998224725"), Err(KeyError::PersonIdLength(12)));
        // GSTIN: the GSTN's published example and others with real check characters.
        assert_eq!(india(KeyType::BusinessId, "27AAPFU0939F1ZV").unwrap().value(), "27AAPFU0939F1ZV");
        assert_eq!(india(KeyType::BusinessId, "29aagcb7383j1z4").unwrap().value(), "29AAGCB7383J1Z4");
        assert_eq!(india(KeyType::BusinessId, "27AAPFU0939F1ZW"), Err(KeyError::BusinessIdCheckDigit));
        assert_eq!(india(KeyType::BusinessId, "27AAPFU0939F1YV"), Err(KeyError::BusinessIdFormat(15)));
        assert_eq!(india(KeyType::BusinessId, "11222333000181"), Err(KeyError::BusinessIdFormat(15)));
        // Phones: India's plan, mobiles only; Brazil's numbers are not keys here.
        assert_eq!(india(KeyType::Phone, "+91 98765 43210").unwrap().value(), "+919876543210");
        assert_eq!(india(KeyType::Phone, "+91 098765 43210").unwrap().value(), "+919876543210");
        assert_eq!(india(KeyType::Phone, "+91 11 2345 6789"), Err(KeyError::PhoneNotMobile));
        assert_eq!(india(KeyType::Phone, "+5561988880000"), Err(KeyError::PhoneCountry));
        assert_eq!(parse(&Brazil, KeyType::PersonId, "234123412346"), Err(KeyError::PersonIdLength(11)));
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

        /// Every accepted key's canonical form parses to itself, whatever
        /// the type and the text (arbitrary text, and spellings of real keys).
        #[test]
        fn every_accepted_key_is_a_fixed_point(kind in prop::sample::select(KeyType::ALL.to_vec()), text in "[ +()0-9a-zA-Z.@-]{0,40}|\\PC{0,40}") {
            for profile in crate::country::PROFILES {
                if let Ok(key) = parse_existing(*profile, kind, &text) {
                    prop_assert_eq!(parse_existing(*profile, kind, key.value()), Ok(key));
                }
            }
        }

        /// Two spellings of one real Brazilian mobile number (grouping,
        /// parentheses, a trunk prefix, white space around) are one key,
        /// and that key is a fixed point.
        #[test]
        fn every_spelling_of_a_mobile_number_is_one_key(
            area in prop::sample::select(vec![11_u32, 21, 31, 41, 51, 61, 71, 81, 91, 92, 98]),
            subscriber in 0_u32..100_000_000,
            style in 0_usize..6,
        ) {
            let digits = format!("{subscriber:08}");
            let plain = format!("+55{area}9{digits}");
            let spelled = match style {
                0 => format!("+55 {area} 9{} {}", &digits[..4], &digits[4..]),
                1 => format!("+55 ({area}) 9{}-{}", &digits[..4], &digits[4..]),
                2 => format!("+55 0{area} 9{digits}"),
                3 => format!(" +55.{area}.9{}.{} ", &digits[..4], &digits[4..]),
                4 => format!("+55 0 {area} 9 {digits}"),
                _ => format!("\t+55{area}9{digits}\n"),
            };
            let a = parse(&Brazil, KeyType::Phone, &plain).unwrap();
            let b = parse(&Brazil, KeyType::Phone, &spelled).unwrap();
            prop_assert_eq!(a.value(), plain.as_str());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(parse(&Brazil, KeyType::Phone, a.value()).unwrap(), a);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// The fast path for canonical keys says yes only where the full
        /// parse gives the same key: numbers of every kind and length,
        /// under every profile.
        #[test]
        fn the_fast_path_agrees_with_the_full_parse(
            code in prop::sample::select(vec!["55", "91", "1", "44", "0"]),
            national in "[1-9][0-9]9[0-9]{8}|[6-9][0-9]{9}|[1-9][0-9][2-8][0-9]{7}|[0-9]{6,13}",
        ) {
            let text = format!("+{code}{national}");
            for profile in crate::country::PROFILES {
                if canonical_mobile(profile.phone_region(), &text) {
                    prop_assert_eq!(phone_by_parsing(*profile, &text), Ok(text.clone()));
                }
            }
        }

        /// And it says yes to valid mobile numbers (it is taken at all).
        #[test]
        fn the_fast_path_takes_canonical_mobiles(area in prop::sample::select(vec![11_u32, 61, 99]), n in 0_u32..100_000_000) {
            let text = format!("+55{area}9{n:08}");
            prop_assert!(canonical_mobile(Brazil.phone_region(), &text));
            prop_assert_eq!(phone_by_parsing(&Brazil, &text), Ok(text.clone()));
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
