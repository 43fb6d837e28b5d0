//! A small, lenient BER/DER TLV reader and DER writer for the KeyDescription.
//!
//! Real attestation extensions break DER rules (`deviceLocked` encoded as `0x01`, tags out of
//! order, non-minimal integers), and the strict `der` decoder refuses them; this reader only
//! enforces what the structure needs: definite lengths that fit the input. High tag numbers
//! (the AuthorizationList uses up to [724]) are supported.

use crate::error::Error;

/// Tag class bits.
pub(crate) const UNIVERSAL: u8 = 0x00;
pub(crate) const CONTEXT: u8 = 0x80;

/// One decoded TLV.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) class: u8,
    pub(crate) constructed: bool,
    pub(crate) number: u32,
    pub(crate) value: &'a [u8],
    /// The whole encoding (header and value).
    pub(crate) raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub(crate) fn is_universal(&self, number: u32) -> bool {
        self.class == UNIVERSAL && self.number == number
    }
}

/// Reads one TLV from `input`, returning it and the rest.
pub(crate) fn read<'a>(input: &'a [u8], what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), Error> {
    let bad = || Error::BadKeyDescription(what);
    let first = *input.first().ok_or_else(bad)?;
    let mut pos = 1usize;
    let mut number = u32::from(first & 0x1f);
    if number == 0x1f {
        number = 0;
        loop {
            let byte = *input.get(pos).ok_or_else(bad)?;
            pos += 1;
            if number > (u32::MAX >> 7) {
                return Err(bad());
            }
            number = (number << 7) | u32::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    let len_byte = *input.get(pos).ok_or_else(bad)?;
    pos += 1;
    let len = if len_byte < 0x80 {
        usize::from(len_byte)
    } else {
        let count = usize::from(len_byte & 0x7f);
        // 0x80 is the indefinite form, which DER and the KeyDescription never use.
        if count == 0 || count > 4 {
            return Err(bad());
        }
        let mut len = 0usize;
        for _ in 0..count {
            let byte = *input.get(pos).ok_or_else(bad)?;
            pos += 1;
            len = (len << 8) | usize::from(byte);
        }
        len
    };
    let end = pos.checked_add(len).ok_or_else(bad)?;
    if end > input.len() {
        return Err(bad());
    }
    Ok((
        Tlv {
            class: first & 0xc0,
            constructed: first & 0x20 != 0,
            number,
            value: &input[pos..end],
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// Iterates over the TLVs of a constructed value.
pub(crate) fn children<'a>(mut value: &'a [u8], what: &'static str) -> Result<Vec<Tlv<'a>>, Error> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (tlv, rest) = read(value, what)?;
        out.push(tlv);
        value = rest;
    }
    Ok(out)
}

/// Reads a universal-tag TLV of the expected number.
pub(crate) fn expect<'a>(
    tlv: Option<&Tlv<'a>>,
    number: u32,
    what: &'static str,
) -> Result<Tlv<'a>, Error> {
    match tlv {
        Some(tlv) if tlv.is_universal(number) => Ok(*tlv),
        _ => Err(Error::BadKeyDescription(what)),
    }
}

pub(crate) const INTEGER: u32 = 2;
pub(crate) const BOOLEAN: u32 = 1;
pub(crate) const OCTET_STRING: u32 = 4;
pub(crate) const NULL: u32 = 5;
pub(crate) const ENUMERATED: u32 = 10;
pub(crate) const SEQUENCE: u32 = 16;
pub(crate) const SET: u32 = 17;

/// INTEGER or ENUMERATED contents as i64 (two's complement, non-minimal encodings tolerated).
pub(crate) fn int_value(value: &[u8], what: &'static str) -> Result<i64, Error> {
    if value.is_empty() {
        return Err(Error::BadKeyDescription(what));
    }
    let negative = value[0] & 0x80 != 0;
    // Strip redundant sign bytes so values like 00 00 01 still fit.
    let mut digits = value;
    while digits.len() > 1
        && ((digits[0] == 0 && digits[1] & 0x80 == 0)
            || (digits[0] == 0xff && digits[1] & 0x80 != 0))
    {
        digits = &digits[1..];
    }
    if digits.len() > 8 {
        return Err(Error::BadKeyDescription(what));
    }
    let mut out: i64 = if negative { -1 } else { 0 };
    for byte in digits {
        out = (out << 8) | i64::from(*byte);
    }
    Ok(out)
}

/// Integer-valued TLV (INTEGER or ENUMERATED).
pub(crate) fn int(tlv: &Tlv<'_>, what: &'static str) -> Result<i64, Error> {
    if tlv.class != UNIVERSAL || !(tlv.number == INTEGER || tlv.number == ENUMERATED) {
        return Err(Error::BadKeyDescription(what));
    }
    int_value(tlv.value, what)
}

// ---- writer ----

/// Encodes a TLV with a definite DER length.
pub(crate) fn encode(class: u8, constructed: bool, number: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let first = class | if constructed { 0x20 } else { 0 };
    if number < 0x1f {
        out.push(first | u8::try_from(number).unwrap_or(0));
    } else {
        out.push(first | 0x1f);
        let mut groups = Vec::new();
        let mut n = number;
        loop {
            groups.push(u8::try_from(n & 0x7f).unwrap_or(0));
            n >>= 7;
            if n == 0 {
                break;
            }
        }
        for (i, group) in groups.iter().enumerate().rev() {
            out.push(if i == 0 { *group } else { group | 0x80 });
        }
    }
    let len = value.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap_or(0));
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// Minimal two's complement INTEGER contents.
pub(crate) fn int_bytes(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let redundant = (bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

pub(crate) fn universal(number: u32, value: &[u8]) -> Vec<u8> {
    let constructed = number == SEQUENCE || number == SET;
    encode(UNIVERSAL, constructed, number, value)
}

pub(crate) fn integer(value: i64) -> Vec<u8> {
    universal(INTEGER, &int_bytes(value))
}

pub(crate) fn enumerated(value: i64) -> Vec<u8> {
    universal(ENUMERATED, &int_bytes(value))
}

pub(crate) fn octets(value: &[u8]) -> Vec<u8> {
    universal(OCTET_STRING, value)
}

pub(crate) fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    universal(SEQUENCE, &parts.concat())
}

/// A DER SET OF: elements sorted by their encodings.
pub(crate) fn set_of(mut parts: Vec<Vec<u8>>) -> Vec<u8> {
    parts.sort();
    universal(SET, &parts.concat())
}

pub(crate) fn explicit(number: u32, inner: &[u8]) -> Vec<u8> {
    encode(CONTEXT, true, number, inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_tag_numbers_round_trip() {
        for number in [0u32, 1, 30, 31, 127, 128, 709, 724, 16_383, 16_384] {
            let encoded = explicit(number, &integer(5));
            let (tlv, rest) = read(&encoded, "t").unwrap();
            assert!(rest.is_empty());
            assert_eq!(
                (tlv.class, tlv.constructed, tlv.number),
                (CONTEXT, true, number)
            );
        }
        // X.690 8.1.2.4: [709] is 0xbf 0x85 0x45.
        assert_eq!(&explicit(709, &[])[..3], &[0xbf, 0x85, 0x45]);
    }

    #[test]
    fn integers_tolerate_non_minimal_encodings() {
        assert_eq!(int_value(&[0, 0, 1], "t").unwrap(), 1);
        assert_eq!(int_value(&[0xff, 0xff], "t").unwrap(), -1);
        assert_eq!(int_value(&[0x01, 0x90], "t").unwrap(), 400);
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -129,
            1_758_900_680_964,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(int_value(&int_bytes(v), "t").unwrap(), v);
        }
        assert!(int_value(&[], "t").is_err());
        assert!(int_value(&[1; 9], "t").is_err());
    }

    #[test]
    fn long_lengths() {
        let value = vec![7u8; 300];
        let encoded = octets(&value);
        assert_eq!(&encoded[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tlv, _) = read(&encoded, "t").unwrap();
        assert_eq!(tlv.value, &value[..]);
        assert!(read(&encoded[..100], "t").is_err());
        assert!(read(&[0x04, 0x80, 0, 0], "t").is_err());
    }
}
