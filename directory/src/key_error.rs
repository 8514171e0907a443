//! Why a key is not valid: one error type for the key rules and the
//! country profiles that check national ids.

/// Why a key is not valid. Messages never contain the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("person id must be {0} digits")]
    PersonIdLength(usize),
    #[error("person id has a wrong check digit")]
    PersonIdCheckDigit,
    #[error("business id must be {0} characters: letters or digits, then two check digits")]
    BusinessIdFormat(usize),
    #[error("business id has a wrong check digit")]
    BusinessIdCheckDigit,
    #[error(
        "phone must be in international form: '+', country code and number (digits, optionally grouped by spaces, \
         '-', '.' or parentheses)"
    )]
    PhoneFormat,
    #[error("phone country code is not accepted by this directory's country profile")]
    PhoneCountry,
    #[error("phone is not a number of the country's numbering plan (area code, length or range)")]
    PhoneNotInPlan,
    #[error("phone keys must be mobile numbers; this number is not a mobile number in the country's numbering plan")]
    PhoneNotMobile,
    #[error("email must be at most {EMAIL_LEN_MAX} characters")]
    EmailTooLong,
    #[error(
        "email must look like name@domain.tld: the name letters, digits and !#$%&'*+-/=?^_`{{|}}~ with single dots \
         between, at most 64 characters"
    )]
    EmailFormat,
    #[error(
        "email domain must be at least two DNS labels of 1 to 63 letters, digits or inner hyphens, an \
         internationalised label in punycode (xn--), and a top-level domain of letters or punycode"
    )]
    EmailDomain,
    #[error("random key must be a UUID (8-4-4-4-12 hex digits)")]
    RandomFormat,
    #[error(
        "keys are written in ASCII: a character outside it (an accented or look-alike letter, a full-width digit, a \
         non-ASCII space) is not accepted"
    )]
    NotAscii,
    #[error("random keys are made by the directory, not chosen")]
    RandomNotChosen,
}

/// Longest email key, as in the Pix DICT rules.
pub const EMAIL_LEN_MAX: usize = 77;
