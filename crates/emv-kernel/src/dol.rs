//! Data Object Lists (PDOL `9F38`, CDOL1 `8C`, CDOL2 `8D`, DDOL `9F49`, TDOL `97`): parsing, and
//! building the concatenated data the card asks for.
//!
//! Source: EMV 4.4 Book 3, section 5.4 ("Rules for Using a Data Object List (DOL)"). A DOL is a
//! list of tag + length entries (lengths in the BER-TLV form of Annex B2). The terminal answers
//! with the values concatenated, without tags or lengths, each fitted to its entry's length:
//!
//! - the tag is unknown to the terminal, or names a constructed object, or the terminal has no
//!   value for it: hex zeros of the requested length;
//! - the value is longer than requested: format `n` loses its leftmost bytes, every other format
//!   its rightmost bytes;
//! - the value is shorter: format `n` gets leading hex zeros, `cn` trailing hex `F`s, every other
//!   format trailing hex zeros.
//!
//! Formats come from the [`crate::tags`] dictionary; a tag it does not know is treated as `b`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::ErrorCode;
use crate::tags::{Format, format_of};
use crate::tlv::{Tag, TlvError, parse_length};

/// Longest DOL the kernel reads: the largest value a short-length template can carry.
pub const MAX_DOL_LEN: usize = 252;

/// One entry of a DOL: the tag and the value length the card wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DolEntry {
    /// The tag asked for.
    pub tag: Tag,
    /// Length of the value to send, in bytes.
    pub len: usize,
}

/// A parsed Data Object List.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dol {
    entries: Vec<DolEntry>,
}

/// Malformed DOL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DolError {
    /// A tag or length in the list is malformed.
    #[error("malformed DOL: {0}")]
    Malformed(#[from] TlvError),
    /// The list is longer than [`MAX_DOL_LEN`].
    #[error("DOL of {0} bytes is longer than 252")]
    TooLong(usize),
    /// Data split against the DOL does not have the DOL's total length.
    #[error("DOL data is {actual} bytes, the DOL asks for {expected}")]
    DataLength {
        /// Sum of the entry lengths.
        expected: usize,
        /// Length of the data given.
        actual: usize,
    },
}

impl ErrorCode for DolError {
    fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "dol_malformed",
            Self::TooLong(_) => "dol_too_long",
            Self::DataLength { .. } => "dol_data_length",
        }
    }
}

/// Where DOL values come from: the terminal's data and what the card has returned so far.
pub trait DataSource {
    /// The value of `tag`, if known.
    fn value(&self, tag: Tag) -> Option<&[u8]>;
}

impl DataSource for BTreeMap<Tag, Vec<u8>> {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        self.get(&tag).map(Vec::as_slice)
    }
}

impl DataSource for [(Tag, &[u8])] {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        self.iter()
            .find(|(candidate, _)| *candidate == tag)
            .map(|(_, value)| *value)
    }
}

impl Dol {
    /// Parses a DOL value (the value field of `9F38`, `8C`, `8D`, `9F49` or `97`).
    ///
    /// # Errors
    /// [`DolError::TooLong`] beyond [`MAX_DOL_LEN`]; [`DolError::Malformed`] for a truncated or
    /// malformed tag or length.
    pub fn parse(input: &[u8]) -> Result<Self, DolError> {
        if input.len() > MAX_DOL_LEN {
            return Err(DolError::TooLong(input.len()));
        }
        let mut entries = Vec::new();
        let mut offset = 0;
        while offset < input.len() {
            let rest = &input[offset..];
            let (tag, tag_len) = Tag::parse(rest).map_err(|error| shift(error, offset))?;
            let (len, len_len) = parse_length(input, offset + tag_len)?;
            entries.push(DolEntry { tag, len });
            offset += tag_len + len_len;
        }
        Ok(Self { entries })
    }

    /// A DOL from entries (for tests and for virtual cards).
    #[must_use]
    pub fn from_entries(entries: Vec<DolEntry>) -> Self {
        Self { entries }
    }

    /// The entries, in order.
    #[must_use]
    pub fn entries(&self) -> &[DolEntry] {
        &self.entries
    }

    /// Whether the DOL lists no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total length of the data the DOL asks for.
    #[must_use]
    pub fn data_len(&self) -> usize {
        self.entries.iter().map(|entry| entry.len).sum()
    }

    /// Whether the DOL asks for `tag`.
    #[must_use]
    pub fn contains(&self, tag: Tag) -> bool {
        self.entries.iter().any(|entry| entry.tag == tag)
    }

    /// The DOL encoded again (tags and one-byte or long-form lengths).
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in &self.entries {
            entry.tag.encode_into(&mut out);
            crate::tlv::encode_length(entry.len, &mut out);
        }
        out
    }

    /// Builds the DOL data from `source` with the Book 3 5.4 rules.
    #[must_use]
    pub fn build(&self, source: &(impl DataSource + ?Sized)) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data_len());
        for entry in &self.entries {
            let value = if entry.tag.is_constructed() {
                None
            } else {
                source.value(entry.tag)
            };
            fit(value, format_of(entry.tag), entry.len, &mut out);
        }
        out
    }

    /// Splits DOL data (as a card receives it) back into one value per entry.
    ///
    /// # Errors
    /// [`DolError::DataLength`] when `data` is not exactly [`Dol::data_len`] bytes.
    pub fn split<'a>(&self, data: &'a [u8]) -> Result<Vec<(Tag, &'a [u8])>, DolError> {
        let expected = self.data_len();
        if data.len() != expected {
            return Err(DolError::DataLength {
                expected,
                actual: data.len(),
            });
        }
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            out.push((entry.tag, &data[offset..offset + entry.len]));
            offset += entry.len;
        }
        Ok(out)
    }
}

/// Appends `value` fitted to `len` bytes for `format` (Book 3 5.4); `None` gives hex zeros.
pub fn fit(value: Option<&[u8]>, format: Format, len: usize, out: &mut Vec<u8>) {
    let Some(value) = value else {
        out.resize(out.len() + len, 0x00);
        return;
    };
    if value.len() >= len {
        match format {
            // Numeric: keep the rightmost (least significant) bytes.
            Format::N => out.extend_from_slice(&value[value.len() - len..]),
            _ => out.extend_from_slice(&value[..len]),
        }
        return;
    }
    let pad = len - value.len();
    match format {
        Format::N => {
            out.resize(out.len() + pad, 0x00);
            out.extend_from_slice(value);
        }
        Format::Cn => {
            out.extend_from_slice(value);
            out.resize(out.len() + pad, 0xFF);
        }
        _ => {
            out.extend_from_slice(value);
            out.resize(out.len() + pad, 0x00);
        }
    }
}

fn shift(error: TlvError, by: usize) -> TlvError {
    match error {
        TlvError::TruncatedTag { offset } => TlvError::TruncatedTag {
            offset: offset + by,
        },
        TlvError::TagTooLong { offset } => TlvError::TagTooLong {
            offset: offset + by,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_fit(value: Option<&[u8]>, format: Format, len: usize, expected: &[u8]) {
        let mut out = Vec::new();
        fit(value, format, len, &mut out);
        assert_eq!(out, expected, "{value:02X?} as {format:?} in {len}");
    }

    /// The padding and truncation rules of Book 3 5.4, one case each.
    #[test]
    fn fitting_rules() {
        check_fit(None, Format::B, 3, &[0, 0, 0]);
        check_fit(Some(&[0x12, 0x34]), Format::N, 4, &[0, 0, 0x12, 0x34]);
        check_fit(Some(&[0x12, 0x34, 0x56]), Format::N, 2, &[0x34, 0x56]);
        check_fit(
            Some(&[0x12, 0x34]),
            Format::Cn,
            4,
            &[0x12, 0x34, 0xFF, 0xFF],
        );
        check_fit(Some(&[0x12, 0x34, 0x56]), Format::Cn, 2, &[0x12, 0x34]);
        check_fit(Some(b"AB"), Format::Ans, 4, b"AB\0\0");
        check_fit(Some(b"ABCD"), Format::An, 2, b"AB");
        check_fit(Some(&[1, 2, 3]), Format::B, 2, &[1, 2]);
        check_fit(Some(&[1]), Format::B, 2, &[1, 0]);
    }
}
