//! Optional blocks of ANSI X9.143-2021 6.2 (Table 1: layout) and 6.3.6 (block types):
//! identifier, length (short or extended form), printable data; and the padding block `PB`.

use alloc::vec::Vec;

use super::Tr31Error;

/// Identifier of the padding block (X9.143-2021 6.3.6).
pub(crate) const PADDING_BLOCK_ID: [u8; 2] = *b"PB";
/// Identifiers whose data X9.143-2021 6.3.6 defines as hexadecimal: `HM` (HMAC hash algorithm),
/// `IK` (AES DUKPT initial key ID), `KP` (KCV of the KBPK), `KS` (TDES DUKPT initial KSN).
const HEX_DATA_IDS: [[u8; 2]; 4] = [*b"HM", *b"IK", *b"KP", *b"KS"];
/// Short length form: 2 hex characters covering ID + length + data, so at most 255.
const SHORT_FORM_OVERHEAD: usize = 4;
/// Extended form (X9.143-2021 6.2, Table 1): `00`, a length-of-length `04`, then 4 hex characters.
const EXTENDED_FORM_OVERHEAD: usize = 10;
/// Largest block the 4-hex-digit extended length can express.
const MAX_BLOCK_LEN: usize = 0xFFFF;

/// One optional block: a two-character identifier and its printable ASCII data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptionalBlock {
    id: [u8; 2],
    data: Vec<u8>,
}

impl OptionalBlock {
    /// A block with identifier `id` (two ASCII letters or digits) and printable ASCII `data`.
    ///
    /// The identifier `PB` is refused: [`super::wrap`] adds the padding block itself.
    ///
    /// # Errors
    /// [`Tr31Error::InvalidOptionalBlockId`], [`Tr31Error::PaddingBlockNotAllowed`],
    /// [`Tr31Error::NonPrintable`] for data outside 0x20–0x7E,
    /// [`Tr31Error::NonHexOptionalBlockData`] for `HM`, `IK`, `KP`, `KS` data that is not
    /// uppercase hex, [`Tr31Error::OptionalBlockTooLong`].
    pub fn new(id: [u8; 2], data: &[u8]) -> Result<Self, Tr31Error> {
        if id == PADDING_BLOCK_ID {
            return Err(Tr31Error::PaddingBlockNotAllowed);
        }
        Self::checked(id, data)
    }

    fn checked(id: [u8; 2], data: &[u8]) -> Result<Self, Tr31Error> {
        if !id.iter().all(u8::is_ascii_alphanumeric) {
            return Err(Tr31Error::InvalidOptionalBlockId);
        }
        if !data.iter().all(|&b| is_printable(b)) {
            return Err(Tr31Error::NonPrintable);
        }
        if HEX_DATA_IDS.contains(&id) && !data.iter().all(|&b| is_upper_hex(b)) {
            return Err(Tr31Error::NonHexOptionalBlockData);
        }
        if data.len() + EXTENDED_FORM_OVERHEAD > MAX_BLOCK_LEN {
            return Err(Tr31Error::OptionalBlockTooLong);
        }
        Ok(Self {
            id,
            data: data.to_vec(),
        })
    }

    /// The identifier, e.g. `*b"KS"`.
    #[must_use]
    pub fn id(&self) -> [u8; 2] {
        self.id
    }

    /// The data characters.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Encoded length: short form when it fits in two hex digits, else extended form.
    pub(crate) fn encoded_len(&self) -> usize {
        let short = SHORT_FORM_OVERHEAD + self.data.len();
        if short <= 0xFF {
            short
        } else {
            EXTENDED_FORM_OVERHEAD + self.data.len()
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        out.extend_from_slice(&self.id);
        if len <= 0xFF {
            push_hex(len, 2, out);
        } else {
            out.extend_from_slice(b"0004");
            push_hex(len, 4, out);
        }
        out.extend_from_slice(&self.data);
    }

    /// A padding block of exactly `len` characters (at least 4), data `0`s (X9.143-2021 6.3.6
    /// requires printable ASCII).
    pub(crate) fn padding(len: usize) -> Self {
        let mut data = Vec::new();
        data.resize(len.saturating_sub(SHORT_FORM_OVERHEAD), b'0');
        Self {
            id: PADDING_BLOCK_ID,
            data,
        }
    }

    pub(crate) fn is_padding(&self) -> bool {
        self.id == PADDING_BLOCK_ID
    }
}

/// Parses one optional block at the start of `input`; returns it and the characters consumed.
pub(crate) fn parse_one(input: &[u8]) -> Result<(OptionalBlock, usize), Tr31Error> {
    let id_and_len = input
        .get(..SHORT_FORM_OVERHEAD)
        .ok_or(Tr31Error::MalformedOptionalBlock)?;
    let id = [id_and_len[0], id_and_len[1]];
    let short_len = parse_hex(&id_and_len[2..4]).ok_or(Tr31Error::MalformedOptionalBlock)?;
    let (block_len, data_start) = if short_len == 0 {
        // Extended form: `00`, length-of-length (2 hex), then that many hex digits of length.
        let len_of_len = input
            .get(4..6)
            .and_then(parse_hex)
            .ok_or(Tr31Error::MalformedOptionalBlock)?;
        let len_end = 6 + len_of_len;
        let len = input
            .get(6..len_end)
            .filter(|digits| !digits.is_empty())
            .and_then(parse_hex)
            .ok_or(Tr31Error::MalformedOptionalBlock)?;
        (len, len_end)
    } else {
        (short_len, SHORT_FORM_OVERHEAD)
    };
    if block_len < data_start {
        return Err(Tr31Error::MalformedOptionalBlock);
    }
    let data = input
        .get(data_start..block_len)
        .ok_or(Tr31Error::MalformedOptionalBlock)?;
    Ok((OptionalBlock::checked(id, data)?, block_len))
}

pub(crate) fn is_printable(byte: u8) -> bool {
    (0x20..=0x7E).contains(&byte)
}

pub(crate) fn is_upper_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'A'..=b'F').contains(&byte)
}

/// An uppercase hex number of at most 8 digits, or `None`.
fn parse_hex(digits: &[u8]) -> Option<usize> {
    if digits.len() > 8 {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        let value = char::from(d).to_digit(16).filter(|_| is_upper_hex(d))?;
        Some((acc << 4) | value as usize)
    })
}

/// Appends `value` as exactly `width` uppercase hex digits; callers keep it in range.
fn push_hex(value: usize, width: u32, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for position in (0..width).rev() {
        out.push(DIGITS[(value >> (4 * position)) & 0xF]);
    }
}
