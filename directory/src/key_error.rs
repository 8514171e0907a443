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
    #[error("phone must be in E.164 form: '+', country code and number, 8 to 15 digits in all")]
    PhoneFormat,
    #[error("phone country code is not accepted by this directory's country profile")]
    PhoneCountry,
    #[error("email must be at most {EMAIL_LEN_MAX} characters")]
    EmailTooLong,
    #[error("email must look like name@domain.tld, without spaces or control characters")]
    EmailFormat,
    #[error("random key must be a lowercase UUID (8-4-4-4-12 hex digits)")]
    RandomFormat,
    #[error("random keys are made by the directory, not chosen")]
    RandomNotChosen,
}

/// Longest email key, as in the Pix DICT rules.
pub const EMAIL_LEN_MAX: usize = 77;
