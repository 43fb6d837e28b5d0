//! Currencies (ISO 4217) and amounts in decimal major units.
//!
//! Money is integer minor units plus a currency (`SYSTEM.md`); an amount typed as `12.34` becomes
//! `1234` minor units with the currency's exponent. The table lists common currencies with their
//! ISO 4217 numeric codes and minor-unit exponents.

use crate::CliError;

/// One ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// Alphabetic code, e.g. `EUR`.
    pub alpha: &'static str,
    /// Numeric code, e.g. 978.
    pub numeric: u16,
    /// Minor-unit exponent, e.g. 2.
    pub exponent: u8,
}

impl Currency {
    /// The numeric code as EMV `n 3` BCD in two bytes (`5F2A`), e.g. `09 78`.
    #[must_use]
    pub fn bcd(self) -> [u8; 2] {
        numeric_bcd(self.numeric)
    }
}

/// An ISO numeric code below 1000 as two BCD bytes.
#[must_use]
pub fn numeric_bcd(code: u16) -> [u8; 2] {
    let digit = |value: u16| (value % 10) as u8;
    [digit(code / 100), (digit(code / 10) << 4) | digit(code)]
}

/// ISO 4217 (alphabetic code, numeric code, exponent).
const CURRENCIES: &[(&str, u16, u8)] = &[
    ("AED", 784, 2),
    ("AUD", 36, 2),
    ("BHD", 48, 3),
    ("BRL", 986, 2),
    ("CAD", 124, 2),
    ("CHF", 756, 2),
    ("CLP", 152, 0),
    ("CNY", 156, 2),
    ("CZK", 203, 2),
    ("DKK", 208, 2),
    ("EUR", 978, 2),
    ("GBP", 826, 2),
    ("HKD", 344, 2),
    ("HUF", 348, 2),
    ("IDR", 360, 2),
    ("ILS", 376, 2),
    ("INR", 356, 2),
    ("ISK", 352, 0),
    ("JOD", 400, 3),
    ("JPY", 392, 0),
    ("KRW", 410, 0),
    ("KWD", 414, 3),
    ("MOP", 446, 2),
    ("MXN", 484, 2),
    ("MYR", 458, 2),
    ("NOK", 578, 2),
    ("NZD", 554, 2),
    ("OMR", 512, 3),
    ("PHP", 608, 2),
    ("PLN", 985, 2),
    ("SAR", 682, 2),
    ("SEK", 752, 2),
    ("SGD", 702, 2),
    ("THB", 764, 2),
    ("TND", 788, 3),
    ("TRY", 949, 2),
    ("TWD", 901, 2),
    ("USD", 840, 2),
    ("VND", 704, 0),
    ("ZAR", 710, 2),
];

/// A currency by alphabetic (`EUR`, any case) or numeric (`978`) code.
///
/// # Errors
/// `unknown_currency` when the code is not in the table.
pub fn currency(code: &str) -> Result<Currency, CliError> {
    let code = code.trim();
    let found = match code.parse::<u16>() {
        Ok(numeric) => CURRENCIES.iter().find(|entry| entry.1 == numeric),
        Err(_) => CURRENCIES
            .iter()
            .find(|entry| entry.0.eq_ignore_ascii_case(code)),
    };
    found
        .map(|&(alpha, numeric, exponent)| Currency {
            alpha,
            numeric,
            exponent,
        })
        .ok_or_else(|| {
            CliError::bad_input(
                "unknown_currency",
                format!("unknown currency {code:?}: give an ISO 4217 code such as EUR or 978"),
            )
        })
}

/// Parses a decimal amount in major units (`12.34`) into minor units with `exponent`.
///
/// # Errors
/// `invalid_amount` for anything but digits with at most `exponent` decimals, or an amount above
/// 999 999 999 999 minor units (EMV `n 12`).
pub fn parse_amount(text: &str, exponent: u8, what: &str) -> Result<u64, CliError> {
    let invalid =
        |why: String| CliError::bad_input("invalid_amount", format!("{what} {text:?}: {why}"));
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits_only = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
        return Err(invalid(
            "expected digits with an optional decimal point, e.g. 12.34".to_owned(),
        ));
    }
    if fraction.len() > usize::from(exponent) {
        return Err(invalid(format!("the currency has {exponent} decimals")));
    }
    let mut minor_text = String::from(whole);
    minor_text.push_str(fraction);
    for _ in fraction.len()..usize::from(exponent) {
        minor_text.push('0');
    }
    let minor: u64 = minor_text
        .parse()
        .map_err(|_| invalid("too large".to_owned()))?;
    if minor > 999_999_999_999 {
        return Err(invalid("above 999 999 999 999 minor units".to_owned()));
    }
    Ok(minor)
}

/// Formats minor units in major units with the exponent (`1234`, 2 → `12.34`).
#[must_use]
pub fn format_amount(minor: u64, exponent: u8) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(u32::from(exponent));
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = usize::from(exponent)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("12.34", 2, "amount"), Ok(1234));
        assert_eq!(parse_amount("12.3", 2, "amount"), Ok(1230));
        assert_eq!(parse_amount("12", 2, "amount"), Ok(1200));
        assert_eq!(parse_amount("1000", 0, "amount"), Ok(1000));
        assert_eq!(parse_amount("1.234", 3, "amount"), Ok(1234));
        for bad in ["12.345", "-1", "1,00", "", ".5", "1e3", "9999999999999"] {
            assert_eq!(
                parse_amount(bad, 2, "amount").unwrap_err().code,
                "invalid_amount",
                "{bad}"
            );
        }
        assert_eq!(
            parse_amount("1.5", 0, "amount").unwrap_err().code,
            "invalid_amount"
        );
        assert_eq!(format_amount(1234, 2), "12.34");
        assert_eq!(format_amount(5, 3), "0.005");
        assert_eq!(format_amount(1000, 0), "1000");
    }

    #[test]
    fn currencies() {
        let euro = currency("eur").unwrap();
        assert_eq!(
            (euro.numeric, euro.exponent, euro.bcd()),
            (978, 2, [0x09, 0x78])
        );
        assert_eq!(currency("978").unwrap().alpha, "EUR");
        assert_eq!(currency("392").unwrap().exponent, 0);
        assert_eq!(currency("036").unwrap().bcd(), [0x00, 0x36]);
        assert_eq!(currency("XXX").unwrap_err().code, "unknown_currency");
    }
}
