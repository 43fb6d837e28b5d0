//! Transaction parameters typed on the command line: dates, times, hex fields, country codes and
//! the CA key choice.

use std::time::{SystemTime, UNIX_EPOCH};

use emv_kernel::Date;
use emv_kernel::oda::CaKeyTable;
use emv_replay::CaSet;

use crate::CliError;
use crate::money::numeric_bcd;

/// Parses `YYMMDD` or an ISO date `YYYY-MM-DD`.
///
/// # Errors
/// `invalid_date`.
pub fn parse_date(text: &str) -> Result<Date, CliError> {
    let invalid = || {
        CliError::bad_input(
            "invalid_date",
            format!("date {text:?}: expected YYMMDD or YYYY-MM-DD"),
        )
    };
    let text = text.trim();
    let digits_only = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    let (year, month, day) = match text.split('-').collect::<Vec<_>>().as_slice() {
        [compact] if compact.len() == 6 && digits_only(compact) => (
            2000 + compact[0..2].parse::<u16>().map_err(|_| invalid())?,
            compact[2..4].parse::<u8>().map_err(|_| invalid())?,
            compact[4..6].parse::<u8>().map_err(|_| invalid())?,
        ),
        [year, month, day]
            if year.len() == 4
                && month.len() == 2
                && day.len() == 2
                && [year, month, day].iter().all(|part| digits_only(part)) =>
        {
            (
                year.parse().map_err(|_| invalid())?,
                month.parse().map_err(|_| invalid())?,
                day.parse().map_err(|_| invalid())?,
            )
        }
        _ => return Err(invalid()),
    };
    Date::new(year, month, day).ok_or_else(invalid)
}

/// Parses `HHMMSS` into the BCD of Transaction Time (`9F21`).
///
/// # Errors
/// `invalid_time`.
pub fn parse_time(text: &str) -> Result<[u8; 3], CliError> {
    let invalid = || CliError::bad_input("invalid_time", format!("time {text:?}: expected HHMMSS"));
    let text = text.trim().replace(':', "");
    if text.len() != 6 || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let part = |range: std::ops::Range<usize>| text[range].parse::<u8>().map_err(|_| invalid());
    let (hours, minutes, seconds) = (part(0..2)?, part(2..4)?, part(4..6)?);
    if hours > 23 || minutes > 59 || seconds > 59 {
        return Err(invalid());
    }
    let bcd = |value: u8| ((value / 10) << 4) | (value % 10);
    Ok([bcd(hours), bcd(minutes), bcd(seconds)])
}

/// Parses exactly `N` bytes of hex (spaces allowed), e.g. an unpredictable number or a TTQ.
///
/// # Errors
/// `invalid_hex` naming `what`.
pub fn parse_hex_bytes<const N: usize>(text: &str, what: &str) -> Result<[u8; N], CliError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&compact)
        .ok()
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or_else(|| {
            CliError::bad_input(
                "invalid_hex",
                format!(
                    "{what} {text:?}: expected {N} bytes as {} hex digits",
                    N * 2
                ),
            )
        })
}

/// Parses an ISO 3166-1 numeric country code (`250`, `0250`) into `9F1A` BCD.
///
/// # Errors
/// `invalid_country`.
pub fn parse_country(text: &str) -> Result<[u8; 2], CliError> {
    let text = text.trim();
    match text.parse::<u16>() {
        Ok(code) if code < 1000 && text.chars().all(|c| c.is_ascii_digit()) => {
            Ok(numeric_bcd(code))
        }
        _ => Err(CliError::bad_input(
            "invalid_country",
            format!("country {text:?}: expected an ISO 3166-1 numeric code such as 250"),
        )),
    }
}

/// Which CA keys to trust: a bundled set or a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaChoice {
    /// A bundled set.
    Bundled(CaSet),
    /// A file in the `RID index modulus exponent [checksum]` form.
    File(String),
}

impl CaChoice {
    /// `test`, `production`, or a path.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        match text {
            "test" => Self::Bundled(CaSet::Test),
            "production" => Self::Bundled(CaSet::Production),
            path => Self::File(path.to_owned()),
        }
    }

    /// A short description for output: `test`, `production` or `file:PATH`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Bundled(CaSet::Test) => "test".to_owned(),
            Self::Bundled(CaSet::Production) => "production".to_owned(),
            Self::File(path) => format!("file:{path}"),
        }
    }

    /// Loads the keys.
    ///
    /// # Errors
    /// `ca_file_unreadable`, or the key file's error code with its line.
    pub fn load(&self) -> Result<CaKeyTable, CliError> {
        let (text, source) = match self {
            Self::Bundled(set) => (set.text().to_owned(), self.describe()),
            Self::File(path) => (
                std::fs::read_to_string(path).map_err(|error| {
                    CliError::bad_input("ca_file_unreadable", format!("{path}: {error}"))
                })?,
                path.clone(),
            ),
        };
        emv_replay::ca_keys::parse(&text)
            .map_err(|error| CliError::bad_input(error.code(), format!("{source}: {error}")))
    }
}

/// Today's date and the time of day (`9F21` BCD), UTC, from the system clock; `None` when the
/// clock is before 1970 or past the dates EMV can code.
#[must_use]
pub fn now_utc() -> Option<(Date, [u8; 3])> {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let days = i64::try_from(seconds / 86_400).ok()?;
    let of_day = seconds % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let date = Date::new(
        u16::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
    )?;
    let bcd = |value: u64| -> Option<u8> {
        let value = u8::try_from(value).ok()?;
        Some(((value / 10) << 4) | (value % 10))
    };
    let time = [
        bcd(of_day / 3600)?,
        bcd(of_day % 3600 / 60)?,
        bcd(of_day % 60)?,
    ];
    Some((date, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(
            parse_date("230301").unwrap(),
            Date::new(2023, 3, 1).unwrap()
        );
        assert_eq!(
            parse_date("2026-11-26").unwrap(),
            Date::new(2026, 11, 26).unwrap()
        );
        for bad in ["23031", "2023-3-01", "231301", "2023/03/01", "abcdef"] {
            assert_eq!(parse_date(bad).unwrap_err().code, "invalid_date", "{bad}");
        }
        assert_eq!(parse_time("111009").unwrap(), [0x11, 0x10, 0x09]);
        assert_eq!(parse_time("11:10:09").unwrap(), [0x11, 0x10, 0x09]);
        assert_eq!(parse_time("241009").unwrap_err().code, "invalid_time");
    }

    #[test]
    fn hex_and_country() {
        assert_eq!(
            parse_hex_bytes::<4>("1A2B 3C4D", "un").unwrap(),
            [0x1A, 0x2B, 0x3C, 0x4D]
        );
        assert_eq!(
            parse_hex_bytes::<4>("1A2B3C", "un").unwrap_err().code,
            "invalid_hex"
        );
        assert_eq!(parse_country("250").unwrap(), [0x02, 0x50]);
        assert_eq!(parse_country("0978").unwrap(), [0x09, 0x78]);
        assert_eq!(parse_country("FRA").unwrap_err().code, "invalid_country");
    }

    #[test]
    fn clock_gives_a_plausible_date() {
        let (date, _) = now_utc().unwrap();
        assert!(date >= Date::new(2024, 1, 1).unwrap());
    }
}
