//! Calendar dates as EMV codes them: `YYMMDD` in BCD (Transaction Date `9A`, Application
//! Expiration Date `5F24`) and `MMYY` in BCD (certificate expiration dates, EMV 4.4 Book 2
//! Tables 6 and 14).
//!
//! Two-digit years 00-49 are read as 2000-2049 and 50-99 as 1950-1999, the interpretation EMV
//! terminals apply to `YY` dates (Book 4, section 6.7.3 on year 2000 compliance).

/// A calendar date (no time zone: the host passes the local transaction date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Four-digit year.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day, 1 to 31.
    pub day: u8,
}

/// Reads one BCD byte (`0x42` is 42); `None` if a nibble is above 9.
#[must_use]
pub const fn bcd_byte(byte: u8) -> Option<u8> {
    let high = byte >> 4;
    let low = byte & 0x0F;
    if high > 9 || low > 9 {
        None
    } else {
        Some(high * 10 + low)
    }
}

const fn century(yy: u8) -> u16 {
    if yy < 50 {
        2000 + yy as u16
    } else {
        1900 + yy as u16
    }
}

const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Date {
    /// A validated date.
    #[must_use]
    pub const fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        if month == 0 || month > 12 || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// Reads `YYMMDD` BCD (3 bytes); `None` for bad BCD or an impossible date.
    #[must_use]
    pub fn from_yymmdd(bytes: &[u8]) -> Option<Self> {
        let [yy, mm, dd] = bytes else {
            return None;
        };
        Self::new(century(bcd_byte(*yy)?), bcd_byte(*mm)?, bcd_byte(*dd)?)
    }

    /// The date as `YYMMDD` BCD.
    #[must_use]
    pub const fn to_yymmdd(self) -> [u8; 3] {
        const fn bcd(value: u8) -> u8 {
            ((value / 10) << 4) | (value % 10)
        }
        [bcd((self.year % 100) as u8), bcd(self.month), bcd(self.day)]
    }
}

/// A certificate expiration month: valid up to and including the last day of that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryMonth {
    /// Four-digit year.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
}

impl ExpiryMonth {
    /// Reads `MMYY` BCD (2 bytes); `None` for bad BCD or a month outside 1..=12.
    #[must_use]
    pub fn from_mmyy(bytes: &[u8]) -> Option<Self> {
        let [mm, yy] = bytes else {
            return None;
        };
        let month = bcd_byte(*mm)?;
        if month == 0 || month > 12 {
            return None;
        }
        Some(Self {
            year: century(bcd_byte(*yy)?),
            month,
        })
    }

    /// Whether the certificate has expired on `today` (Book 2 5.3 step 9, 6.4 step 9: the
    /// expiration date is earlier than today's date).
    #[must_use]
    pub fn is_expired_on(self, today: Date) -> bool {
        (self.year, self.month) < (today.year, today.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            Date::from_yymmdd(&[0x26, 0x11, 0x26]),
            Date::new(2026, 11, 26)
        );
        assert_eq!(
            Date::from_yymmdd(&[0x99, 0x12, 0x31]),
            Date::new(1999, 12, 31)
        );
        assert_eq!(Date::from_yymmdd(&[0x25, 0x02, 0x29]), None);
        assert_eq!(
            Date::from_yymmdd(&[0x24, 0x02, 0x29]),
            Date::new(2024, 2, 29)
        );
        assert_eq!(Date::from_yymmdd(&[0x26, 0x1A, 0x01]), None);
        assert_eq!(Date::from_yymmdd(&[0x26, 0x01]), None);
        let date = Date::new(2026, 1, 5).unwrap();
        assert_eq!(date.to_yymmdd(), [0x26, 0x01, 0x05]);
    }

    #[test]
    fn expiry_is_end_of_month() {
        let expiry = ExpiryMonth::from_mmyy(&[0x12, 0x21]).unwrap();
        assert!(!expiry.is_expired_on(Date::new(2021, 12, 31).unwrap()));
        assert!(expiry.is_expired_on(Date::new(2022, 1, 1).unwrap()));
        assert_eq!(ExpiryMonth::from_mmyy(&[0x13, 0x21]), None);
    }
}
