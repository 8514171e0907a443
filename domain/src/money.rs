//! Exact money.
//!
//! An [`Amount`] is a non-negative count of minor units (cents) held in an
//! `i64`. The switch runs one currency with a fixed scale of two decimal places
//! (BRL, the default). On the wire and in reports amounts are decimal strings
//! ("1234.56"); `rust_decimal` parses them exactly, never through floats.

use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

/// Decimal places of the switch's currency. Every amount is an exact multiple
/// of `10^-SCALE`.
pub const SCALE: u32 = 2;

/// The currency every amount is in (ISO 4217). One switch, one currency.
pub const CURRENCY: &str = "BRL";

/// Longest amount string accepted from outside. Longer input is refused before
/// it reaches the decimal parser.
pub const AMOUNT_TEXT_LEN_MAX: usize = 32;

/// An exact, signed quantity of minor units. Payment amounts are positive;
/// positions and limits use the same type and may be negative.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount text is longer than {AMOUNT_TEXT_LEN_MAX} characters")]
    TooLong,
    #[error(
        "amount is not a decimal number (expected digits with an optional '.' and at most {SCALE} decimals, e.g. \"10.50\")"
    )]
    NotDecimal,
    #[error("amount has more than {SCALE} decimal places")]
    TooPrecise,
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount is too large")]
    Overflow,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);
    /// The largest amount that can be represented.
    pub const MAX: Amount = Amount(i64::MAX);

    pub const fn from_minor(minor: i64) -> Amount {
        Amount(minor)
    }

    pub const fn minor(self) -> i64 {
        self.0
    }

    /// Whole units, for convenience in examples and tests (`Amount::units(10)` is 10.00).
    pub const fn units(units: i64) -> Amount {
        Amount(units * 100)
    }

    /// Parses a payment amount: strictly positive, at most [`SCALE`] decimals.
    pub fn parse_positive(text: &str) -> Result<Amount, AmountError> {
        let amount = Amount::parse_signed(text)?;
        if amount.0 <= 0 {
            return Err(AmountError::NotPositive);
        }
        Ok(amount)
    }

    /// Parses a limit or balance: zero allowed, negative refused.
    pub fn parse_non_negative(text: &str) -> Result<Amount, AmountError> {
        let amount = Amount::parse_signed(text)?;
        if amount.0 < 0 {
            return Err(AmountError::Negative);
        }
        Ok(amount)
    }

    /// Parses any exact decimal with at most [`SCALE`] decimals.
    pub fn parse_signed(text: &str) -> Result<Amount, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.len() > AMOUNT_TEXT_LEN_MAX {
            return Err(AmountError::TooLong);
        }
        // rust_decimal accepts forms we do not want on a payments wire
        // (exponents, underscores, a leading '+'): allow digits, one '.', and
        // a leading '-' only.
        let body = text.strip_prefix('-').unwrap_or(text);
        let mut dots = 0;
        for b in body.bytes() {
            match b {
                b'0'..=b'9' => {}
                b'.' => dots += 1,
                _ => return Err(AmountError::NotDecimal),
            }
        }
        if dots > 1 || body.is_empty() || body.starts_with('.') || body.ends_with('.') {
            return Err(AmountError::NotDecimal);
        }
        let decimal = Decimal::from_str(text).map_err(|_| AmountError::Overflow)?;
        if decimal.scale() > SCALE {
            return Err(AmountError::TooPrecise);
        }
        Amount::from_decimal(decimal)
    }

    /// Converts an exact decimal; refuses one that is not a whole number of minor units.
    pub fn from_decimal(decimal: Decimal) -> Result<Amount, AmountError> {
        let minor = decimal.checked_mul(Decimal::from(10_i64.pow(SCALE))).ok_or(AmountError::Overflow)?;
        if !minor.fract().is_zero() {
            return Err(AmountError::TooPrecise);
        }
        let minor: i64 = minor.try_into().map_err(|_| AmountError::Overflow)?;
        Ok(Amount(minor))
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, SCALE)
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    pub fn checked_neg(self) -> Option<Amount> {
        self.0.checked_neg().map(Amount)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl fmt::Display for Amount {
    /// Always exactly [`SCALE`] decimals: "10.00", "-3.05".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = 10_u64.pow(SCALE);
        write!(f, "{sign}{}.{:0width$}", abs / unit, abs % unit, width = SCALE as usize)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse_signed(s)
    }
}

/// Serde helper writing an [`Amount`] as its decimal string ("1000.00"), for
/// configuration files people read. The journal keeps the compact integer form.
pub mod as_decimal_string {
    use super::Amount;

    pub fn serialize<S: serde::Serializer>(amount: &Amount, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(amount)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        Amount::parse_signed(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Amount::parse_positive("10.50").unwrap().minor(), 1050);
        assert_eq!(Amount::parse_positive("0.01").unwrap().minor(), 1);
        assert_eq!(Amount::parse_positive("7").unwrap().minor(), 700);
        assert_eq!(Amount::parse_positive("7.5").unwrap().minor(), 750);
        assert_eq!(Amount::parse_signed("-3.05").unwrap().minor(), -305);
        assert_eq!(Amount::parse_non_negative("0").unwrap(), Amount::ZERO);
    }

    #[test]
    fn refuses_bad_amounts_with_precise_errors() {
        assert_eq!(Amount::parse_positive(""), Err(AmountError::Empty));
        assert_eq!(Amount::parse_positive("0"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse_positive("0.00"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse_positive("-1.00"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse_non_negative("-1.00"), Err(AmountError::Negative));
        assert_eq!(Amount::parse_positive("1.001"), Err(AmountError::TooPrecise));
        assert_eq!(Amount::parse_positive("1e5"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive("+1"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive("1_000"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive("1.2.3"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive(".5"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive("5."), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive("NaN"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse_positive("99999999999999999999"), Err(AmountError::Overflow));
        assert_eq!(Amount::parse_positive(&"9".repeat(40)), Err(AmountError::TooLong));
    }

    #[test]
    fn displays_with_fixed_scale() {
        assert_eq!(Amount::from_minor(1050).to_string(), "10.50");
        assert_eq!(Amount::from_minor(5).to_string(), "0.05");
        assert_eq!(Amount::from_minor(-305).to_string(), "-3.05");
        assert_eq!(Amount::from_minor(i64::MIN).to_string(), "-92233720368547758.08");
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(minor in any::<i64>()) {
            let amount = Amount::from_minor(minor);
            prop_assert_eq!(Amount::parse_signed(&amount.to_string()), Ok(amount));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = Amount::parse_signed(&text);
        }
    }
}
