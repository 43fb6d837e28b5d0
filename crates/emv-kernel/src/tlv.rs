//! BER-TLV as EMV uses it: EMV 4.4 Book 3, Annex B ("Rules for BER-TLV Data Objects"),
//! which profiles ISO/IEC 8825-1.
//!
//! - Tags (Annex B1): one byte, or a first byte whose bits b5..b1 are all set followed by
//!   subsequent bytes, each with b8 set except the last. Bit b6 of the first byte marks a
//!   constructed object; b8..b7 give the class. Tags of up to four bytes are accepted.
//! - Lengths (Annex B2): one byte `00`..`7F`, or `81 xx`, `82 xx xx`, `83 xx xx xx`. The indefinite
//!   form `80` and length fields of more than four bytes are rejected. Book 3 does not require the
//!   shortest length form, so a non-minimal long form (`81 05`) is read; [`encode`] always writes the
//!   shortest form.
//! - Padding (Annex B): `00` bytes may appear before, between and after data objects; the parsers
//!   here skip them.
//!
//! Parsing is zero-copy ([`Tlv`] borrows its value) and never panics: every malformed input ends
//! in a [`TlvError`] carrying the offset of the problem, never any of the data itself.

use alloc::vec::Vec;
use core::fmt;

use crate::ErrorCode;

/// Deepest nesting of constructed templates the recursive searches follow.
///
/// EMV responses nest at most three levels (`6F` → `A5` → `BF0C` → `61`); eight leaves room for
/// proprietary templates while bounding the recursion on hostile input.
pub const MAX_DEPTH: usize = 8;

/// Longest tag field accepted, in bytes.
pub const MAX_TAG_LEN: usize = 4;

/// A BER-TLV tag, stored as its bytes read as a big-endian integer (`9F26` is `0x9F26`).
///
/// The named EMV tags are associated constants (`Tag::ApplicationCryptogram // 9F26`) defined in
/// [`crate::tags`], together with a dictionary of names and formats.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(u32);

/// The class of a tag (Book 3 Annex B1, bits b8..b7 of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagClass {
    /// `00`: universal class.
    Universal,
    /// `01`: application class (most EMV tags, e.g. `5A`, `9F26`).
    Application,
    /// `10`: context-specific class (e.g. `82`, `94`).
    ContextSpecific,
    /// `11`: private class (e.g. `DF01`).
    Private,
}

impl Tag {
    /// A tag from its raw value, e.g. `Tag::from_raw(0x9F26)`.
    ///
    /// The value is not checked; use [`Tag::parse`] for bytes from a card.
    #[must_use]
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw value (`0x9F26` for `9F26`).
    #[must_use]
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Number of bytes of the encoded tag (1 to 4).
    #[must_use]
    pub const fn len(self) -> usize {
        if self.0 > 0xFF_FFFF {
            4
        } else if self.0 > 0xFFFF {
            3
        } else if self.0 > 0xFF {
            2
        } else {
            1
        }
    }

    /// Always `false`: a tag has at least one byte. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The first byte of the encoded tag.
    #[must_use]
    pub const fn first_byte(self) -> u8 {
        (self.0 >> (8 * (self.len() - 1))) as u8
    }

    /// Whether the tag marks a constructed object (bit b6 of the first byte, Book 3 Annex B1).
    #[must_use]
    pub const fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The class of the tag (bits b8..b7 of the first byte).
    #[must_use]
    pub const fn class(self) -> TagClass {
        match self.first_byte() >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::ContextSpecific,
            _ => TagClass::Private,
        }
    }

    /// Reads a tag at the start of `input`.
    ///
    /// Returns the tag and the number of bytes it took.
    ///
    /// # Errors
    /// [`TlvError::TruncatedTag`] when the input ends inside the tag (or is empty),
    /// [`TlvError::TagTooLong`] for a tag of more than [`MAX_TAG_LEN`] bytes.
    pub fn parse(input: &[u8]) -> Result<(Self, usize), TlvError> {
        Self::parse_at(input, 0)
    }

    fn parse_at(input: &[u8], offset: usize) -> Result<(Self, usize), TlvError> {
        let Some(&first) = input.get(offset) else {
            return Err(TlvError::TruncatedTag { offset });
        };
        let mut raw = u32::from(first);
        let mut len = 1;
        if first & 0x1F == 0x1F {
            // Subsequent bytes follow while b8 is set (Book 3 Annex B1).
            loop {
                let Some(&next) = input.get(offset + len) else {
                    return Err(TlvError::TruncatedTag { offset });
                };
                len += 1;
                if len > MAX_TAG_LEN {
                    return Err(TlvError::TagTooLong { offset });
                }
                raw = (raw << 8) | u32::from(next);
                if next & 0x80 == 0 {
                    break;
                }
            }
        }
        Ok((Self(raw), len))
    }

    /// Appends the encoded tag to `out`.
    pub fn encode_into(self, out: &mut Vec<u8>) {
        let bytes = self.0.to_be_bytes();
        out.extend_from_slice(&bytes[4 - self.len()..]);
    }

    /// The encoded tag.
    #[must_use]
    pub fn to_vec(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.encode_into(&mut out);
        out
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match crate::tags::lookup(*self) {
            Some(info) => write!(f, "Tag({self} {})", info.name),
            None => write!(f, "Tag({self})"),
        }
    }
}

impl fmt::Display for Tag {
    /// Upper-case hex of the encoded tag, e.g. `9F26`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.len() * 2;
        write!(f, "{:0width$X}", self.0)
    }
}

/// Malformed BER-TLV input. Offsets count from the start of the buffer handed to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ends inside a tag field.
    #[error("TLV input ends inside the tag at offset {offset}")]
    TruncatedTag {
        /// Offset of the tag's first byte.
        offset: usize,
    },
    /// A tag field longer than [`MAX_TAG_LEN`] bytes.
    #[error("tag at offset {offset} is longer than 4 bytes")]
    TagTooLong {
        /// Offset of the tag's first byte.
        offset: usize,
    },
    /// The input ends inside a length field.
    #[error("TLV input ends inside the length at offset {offset}")]
    TruncatedLength {
        /// Offset of the length's first byte.
        offset: usize,
    },
    /// The indefinite length form `80`, which Book 3 Annex B2 does not allow.
    #[error("indefinite length at offset {offset}")]
    IndefiniteLength {
        /// Offset of the length byte.
        offset: usize,
    },
    /// A length field of more than four bytes (`84` and above).
    #[error("length field at offset {offset} is longer than 4 bytes")]
    LengthTooLong {
        /// Offset of the length's first byte.
        offset: usize,
    },
    /// The value is longer than the bytes that remain.
    #[error("value at offset {offset} declares {declared} bytes but only {available} remain")]
    TruncatedValue {
        /// Offset of the value's first byte.
        offset: usize,
        /// Length declared by the length field.
        declared: usize,
        /// Bytes left in the input (or in the enclosing template).
        available: usize,
    },
    /// Constructed templates nest deeper than [`MAX_DEPTH`].
    #[error("templates nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Data follows the single object expected (e.g. after a response template).
    #[error("unexpected data after the object, at offset {offset}")]
    TrailingData {
        /// Offset of the first byte after the object.
        offset: usize,
    },
    /// A primitive object was expected to be a template.
    #[error("tag {tag} is not a constructed template")]
    NotConstructed {
        /// The tag found.
        tag: Tag,
    },
}

impl ErrorCode for TlvError {
    fn code(&self) -> &'static str {
        match self {
            Self::TruncatedTag { .. } => "tlv_truncated_tag",
            Self::TagTooLong { .. } => "tlv_tag_too_long",
            Self::TruncatedLength { .. } => "tlv_truncated_length",
            Self::IndefiniteLength { .. } => "tlv_indefinite_length",
            Self::LengthTooLong { .. } => "tlv_length_too_long",
            Self::TruncatedValue { .. } => "tlv_truncated_value",
            Self::TooDeep => "tlv_too_deep",
            Self::NotConstructed { .. } => "tlv_not_constructed",
            Self::TrailingData { .. } => "tlv_trailing_data",
        }
    }
}

/// Reads a length field at `offset` (Book 3 Annex B2).
///
/// Returns the length and the number of bytes the field took.
///
/// # Errors
/// [`TlvError::TruncatedLength`], [`TlvError::IndefiniteLength`] or [`TlvError::LengthTooLong`].
pub fn parse_length(input: &[u8], offset: usize) -> Result<(usize, usize), TlvError> {
    let Some(&first) = input.get(offset) else {
        return Err(TlvError::TruncatedLength { offset });
    };
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let n_bytes = usize::from(first & 0x7F);
    if n_bytes == 0 {
        return Err(TlvError::IndefiniteLength { offset });
    }
    if n_bytes > 3 {
        return Err(TlvError::LengthTooLong { offset });
    }
    let Some(bytes) = input.get(offset + 1..offset + 1 + n_bytes) else {
        return Err(TlvError::TruncatedLength { offset });
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte));
    Ok((len, 1 + n_bytes))
}

/// Appends the shortest length field for `len` (Book 3 Annex B2).
///
/// Lengths above `0xFF_FFFF` cannot be encoded in four bytes; EMV objects never come near that, and
/// such a length is written as `83 FF FF FF` (callers must not build such values).
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        let len = len.min(0xFF_FFFF);
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
}

/// Appends one data object (tag, shortest length, value) to `out`.
pub fn encode(tag: Tag, value: &[u8], out: &mut Vec<u8>) {
    tag.encode_into(out);
    encode_length(value.len(), out);
    out.extend_from_slice(value);
}

/// One data object, borrowing its value from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: Tag,
    /// The value field (for a template: the encoded objects inside it).
    pub value: &'a [u8],
    /// The whole encoded object (tag, length and value) as it appeared in the input.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reads one object at the start of `input` (after any `00` padding).
    ///
    /// Returns the object and the number of bytes consumed, padding included, or `None` when only
    /// padding remains.
    ///
    /// # Errors
    /// Any [`TlvError`] for a malformed tag, length or value.
    pub fn parse_one(input: &'a [u8]) -> Result<Option<(Self, usize)>, TlvError> {
        let mut offset = 0;
        while input.get(offset) == Some(&0x00) {
            offset += 1;
        }
        if offset == input.len() {
            return Ok(None);
        }
        let start = offset;
        let (tag, tag_len) = Tag::parse_at(input, offset)?;
        offset += tag_len;
        let (len, len_len) = parse_length(input, offset)?;
        offset += len_len;
        let available = input.len() - offset;
        if len > available {
            return Err(TlvError::TruncatedValue {
                offset,
                declared: len,
                available,
            });
        }
        let end = offset + len;
        let tlv = Tlv {
            tag,
            value: &input[offset..end],
            raw: &input[start..end],
        };
        Ok(Some((tlv, end)))
    }

    /// Iterates over the objects inside this template.
    ///
    /// # Errors
    /// [`TlvError::NotConstructed`] when the tag is primitive.
    pub fn children(&self) -> Result<TlvIter<'a>, TlvError> {
        if self.tag.is_constructed() {
            Ok(TlvIter::new(self.value))
        } else {
            Err(TlvError::NotConstructed { tag: self.tag })
        }
    }

    /// The encoded object (equal to `raw` unless the input used a non-minimal length).
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len() + 8);
        encode(self.tag, self.value, &mut out);
        out
    }
}

/// Iterator over the data objects of one level of a buffer; `00` padding is skipped.
///
/// After the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    input: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> TlvIter<'a> {
    /// Iterates over the objects in `input`.
    #[must_use]
    pub const fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            offset: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.input.get(self.offset..)?;
        match Tlv::parse_one(rest) {
            Ok(Some((tlv, used))) => {
                self.offset += used;
                Some(Ok(tlv))
            }
            Ok(None) => {
                self.offset = self.input.len();
                None
            }
            Err(error) => {
                self.failed = true;
                Some(Err(shift(error, self.offset)))
            }
        }
    }
}

/// Moves an error's offset from a sub-slice to the enclosing buffer.
fn shift(error: TlvError, by: usize) -> TlvError {
    match error {
        TlvError::TruncatedTag { offset } => TlvError::TruncatedTag {
            offset: offset + by,
        },
        TlvError::TagTooLong { offset } => TlvError::TagTooLong {
            offset: offset + by,
        },
        TlvError::TruncatedLength { offset } => TlvError::TruncatedLength {
            offset: offset + by,
        },
        TlvError::IndefiniteLength { offset } => TlvError::IndefiniteLength {
            offset: offset + by,
        },
        TlvError::LengthTooLong { offset } => TlvError::LengthTooLong {
            offset: offset + by,
        },
        TlvError::TruncatedValue {
            offset,
            declared,
            available,
        } => TlvError::TruncatedValue {
            offset: offset + by,
            declared,
            available,
        },
        TlvError::TrailingData { offset } => TlvError::TrailingData {
            offset: offset + by,
        },
        other => other,
    }
}

/// Parses every object of one level of `input`.
///
/// # Errors
/// The first [`TlvError`] met.
pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    TlvIter::new(input).collect()
}

/// Parses `input` as exactly one object (padding around it allowed), e.g. a whole R-APDU body.
///
/// # Errors
/// A [`TlvError`] for malformed input; [`TlvError::TruncatedTag`] when `input` holds no object;
/// [`TlvError::TrailingData`] when another object follows the first.
pub fn parse_single(input: &[u8]) -> Result<Tlv<'_>, TlvError> {
    let (first, used) = Tlv::parse_one(input)?.ok_or(TlvError::TruncatedTag { offset: 0 })?;
    if input[used..].iter().any(|&byte| byte != 0x00) {
        return Err(TlvError::TrailingData { offset: used });
    }
    Ok(first)
}

/// Finds the first object with `tag` on the top level of `input`.
///
/// # Errors
/// A [`TlvError`] met before the tag was found.
pub fn find(input: &[u8], tag: Tag) -> Result<Option<Tlv<'_>>, TlvError> {
    for tlv in TlvIter::new(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv));
        }
    }
    Ok(None)
}

/// Finds the first object with `tag` anywhere in `input`, searching depth first into constructed
/// templates (up to [`MAX_DEPTH`] levels).
///
/// # Errors
/// A [`TlvError`] met before the tag was found, or [`TlvError::TooDeep`].
pub fn find_nested(input: &[u8], tag: Tag) -> Result<Option<Tlv<'_>>, TlvError> {
    find_nested_at(input, tag, 0)
}

fn find_nested_at(input: &[u8], tag: Tag, depth: usize) -> Result<Option<Tlv<'_>>, TlvError> {
    if depth >= MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    for tlv in TlvIter::new(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv));
        }
        if tlv.tag.is_constructed()
            && let Some(found) = find_nested_at(tlv.value, tag, depth + 1)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Follows a path of tags from the top level: `find_path(fci, &[FCI_TEMPLATE, FCI_PROPRIETARY,
/// DF_NAME])`. Every tag but the last must be a constructed template.
///
/// # Errors
/// A [`TlvError`] met on the way, or [`TlvError::NotConstructed`] when an inner step is primitive.
pub fn find_path<'a>(input: &'a [u8], path: &[Tag]) -> Result<Option<Tlv<'a>>, TlvError> {
    let mut level = input;
    let mut found = None;
    for (idx, &tag) in path.iter().enumerate() {
        let Some(tlv) = find(level, tag)? else {
            return Ok(None);
        };
        if idx + 1 < path.len() {
            if !tlv.tag.is_constructed() {
                return Err(TlvError::NotConstructed { tag: tlv.tag });
            }
            level = tlv.value;
        }
        found = Some(tlv);
    }
    Ok(found)
}

/// Visits every primitive object in `input`, descending into templates (up to [`MAX_DEPTH`]
/// levels), in the order they appear. Templates themselves are not visited.
///
/// # Errors
/// The first [`TlvError`] met, or [`TlvError::TooDeep`].
pub fn for_each_primitive<'a>(
    input: &'a [u8],
    visit: &mut dyn FnMut(Tlv<'a>),
) -> Result<(), TlvError> {
    for_each_primitive_at(input, visit, 0)
}

fn for_each_primitive_at<'a>(
    input: &'a [u8],
    visit: &mut dyn FnMut(Tlv<'a>),
    depth: usize,
) -> Result<(), TlvError> {
    if depth >= MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    for tlv in TlvIter::new(input) {
        let tlv = tlv?;
        if tlv.tag.is_constructed() {
            for_each_primitive_at(tlv.value, visit, depth + 1)?;
        } else {
            visit(tlv);
        }
    }
    Ok(())
}

/// Builds nested BER-TLV, e.g. an FCI or a GPO response, with the shortest lengths.
///
/// ```
/// use emv_kernel::tlv::{Tag, TlvBuilder};
/// let mut fci = TlvBuilder::new();
/// fci.template(Tag::from_raw(0x6F), |fci| {
///     fci.primitive(Tag::from_raw(0x84), &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]);
/// });
/// assert_eq!(fci.finish()[..2], [0x6F, 0x09]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TlvBuilder {
    out: Vec<u8>,
}

impl TlvBuilder {
    /// An empty builder.
    #[must_use]
    pub const fn new() -> Self {
        Self { out: Vec::new() }
    }

    /// Appends a primitive object.
    pub fn primitive(&mut self, tag: Tag, value: &[u8]) -> &mut Self {
        encode(tag, value, &mut self.out);
        self
    }

    /// Appends a template whose contents the closure builds.
    pub fn template(&mut self, tag: Tag, build: impl FnOnce(&mut TlvBuilder)) -> &mut Self {
        let mut inner = TlvBuilder::new();
        build(&mut inner);
        encode(tag, &inner.out, &mut self.out);
        self
    }

    /// Appends bytes that are already encoded TLV.
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.out.extend_from_slice(encoded);
        self
    }

    /// The encoded bytes.
    #[must_use]
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_length(input: &[u8], expected: Result<(usize, usize), TlvError>) {
        assert_eq!(parse_length(input, 0), expected, "input {input:02X?}");
    }

    #[test]
    fn length_forms() {
        check_length(&[0x00], Ok((0, 1)));
        check_length(&[0x7F], Ok((127, 1)));
        check_length(&[0x81, 0x80], Ok((128, 2)));
        check_length(&[0x81, 0x05], Ok((5, 2)));
        check_length(&[0x82, 0x01, 0x00], Ok((256, 3)));
        check_length(&[0x83, 0x01, 0x00, 0x00], Ok((65536, 4)));
        check_length(&[0x80], Err(TlvError::IndefiniteLength { offset: 0 }));
        check_length(
            &[0x84, 0, 0, 0, 1],
            Err(TlvError::LengthTooLong { offset: 0 }),
        );
        check_length(&[0x82, 0x01], Err(TlvError::TruncatedLength { offset: 0 }));
        check_length(&[], Err(TlvError::TruncatedLength { offset: 0 }));
    }

    #[test]
    fn encode_length_is_minimal() {
        for (len, expected) in [
            (0usize, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x81, 0x80]),
            (255, &[0x81, 0xFF]),
            (256, &[0x82, 0x01, 0x00]),
            (65536, &[0x83, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            encode_length(len, &mut out);
            assert_eq!(out, expected, "length {len}");
        }
    }

    #[test]
    fn tag_bits() {
        let tag = Tag::from_raw(0xBF0C);
        assert!(tag.is_constructed());
        assert_eq!(tag.class(), TagClass::ContextSpecific);
        assert_eq!(tag.len(), 2);
        assert_eq!(alloc::format!("{tag}"), "BF0C");
        assert!(!Tag::from_raw(0x9F26).is_constructed());
        assert_eq!(Tag::from_raw(0x5A).class(), TagClass::Application);
        assert_eq!(Tag::from_raw(0x5A).to_vec(), [0x5A]);
    }
}
