//! The Application File Locator (`94`): which records to read and which of them take part in
//! offline data authentication.
//!
//! Source: EMV 4.4 Book 3, section 10.2 ("Read Application Data"): the AFL is a list of 4-byte
//! entries; byte 1 bits b8-b4 give the SFI (1 to 30), byte 2 the first record (not 0), byte 3 the
//! last record (not below the first), byte 4 how many records from the first one are included in
//! offline data authentication. Any other coding ends the transaction.

use alloc::vec::Vec;

use crate::ErrorCode;

/// One AFL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AflEntry {
    /// Short File Identifier, 1 to 30.
    pub sfi: u8,
    /// First record to read.
    pub first_record: u8,
    /// Last record to read.
    pub last_record: u8,
    /// Number of records, counted from `first_record`, that are signed for offline data
    /// authentication.
    pub oda_records: u8,
}

impl AflEntry {
    /// The records of this entry, with whether each takes part in ODA.
    pub fn records(&self) -> impl Iterator<Item = (u8, bool)> + '_ {
        (self.first_record..=self.last_record)
            .map(move |record| (record, record - self.first_record < self.oda_records))
    }
}

/// A malformed AFL (Book 3 10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AflError {
    /// The length is zero or not a multiple of four.
    #[error("AFL of {0} bytes is not a non-empty multiple of 4")]
    Length(usize),
    /// An entry breaks the coding rules.
    #[error("AFL entry {0} is invalid")]
    Entry(usize),
}

impl ErrorCode for AflError {
    fn code(&self) -> &'static str {
        match self {
            Self::Length(_) => "afl_length",
            Self::Entry(_) => "afl_entry",
        }
    }
}

/// Parses an AFL value.
///
/// # Errors
/// [`AflError`] for a length that is not a non-empty multiple of 4 or an invalid entry.
pub fn parse(value: &[u8]) -> Result<Vec<AflEntry>, AflError> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return Err(AflError::Length(value.len()));
    }
    value
        .chunks_exact(4)
        .enumerate()
        .map(|(idx, chunk)| {
            let entry = AflEntry {
                sfi: chunk[0] >> 3,
                first_record: chunk[1],
                last_record: chunk[2],
                oda_records: chunk[3],
            };
            let span = u16::from(entry.last_record) + 1
                - u16::from(entry.first_record.min(entry.last_record));
            let valid = chunk[0] & 0x07 == 0
                && (1..=30).contains(&entry.sfi)
                && entry.first_record != 0
                && entry.last_record >= entry.first_record
                && u16::from(entry.oda_records) <= span;
            if valid {
                Ok(entry)
            } else {
                Err(AflError::Entry(idx))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let afl = parse(&[0x08, 0x01, 0x03, 0x02, 0x10, 0x01, 0x01, 0x00]).unwrap();
        assert_eq!(afl.len(), 2);
        assert_eq!(afl[0].sfi, 1);
        let records: Vec<_> = afl[0].records().collect();
        assert_eq!(records, [(1, true), (2, true), (3, false)]);
        assert_eq!(parse(&[0x08, 0x00, 0x01, 0x00]), Err(AflError::Entry(0)));
        assert_eq!(parse(&[0x08, 0x02, 0x01, 0x00]), Err(AflError::Entry(0)));
        assert_eq!(parse(&[0x08, 0x01, 0x01, 0x02]), Err(AflError::Entry(0)));
        assert_eq!(parse(&[0xF8, 0x01, 0x01, 0x00]), Err(AflError::Entry(0)));
        assert_eq!(parse(&[0x09, 0x01, 0x01, 0x00]), Err(AflError::Entry(0)));
        assert_eq!(parse(&[0x08, 0x01, 0x01]), Err(AflError::Length(3)));
        assert_eq!(parse(&[]), Err(AflError::Length(0)));
    }
}
