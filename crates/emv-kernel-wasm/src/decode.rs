//! The outcome message read back on a host: a reader for exactly the layout [`crate::encode`]
//! writes (keys in its order, no whitespace, no escapes), and `None` for anything else, which
//! the host then reads with serde.
//!
//! Why: after the `.wasm` stopped using JSON for anything but the outcome, reading that one
//! message with serde was the largest cost a host added to a short transaction (about as much
//! as the native kernel's whole transaction). What this reader accepts, serde reads to the same
//! [`Outcome`] (the tests check both on every shape), so a host that falls back to serde for
//! the rest gets the same result for any message, only sooner for the kernel's own.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::message::{DataObject, Hex, OdaMessage, Outcome, ReasonMessage, UiMessageMessage};

/// The outcome of an outcome message in the kernel's own layout, or `None` when the message is
/// laid out otherwise (or is not an outcome message at all).
#[must_use]
pub fn outcome_message(message: &[u8]) -> Option<Box<Outcome>> {
    let mut cursor = Cursor(message);
    cursor.literal(br#"{"type":"outcome","outcome":{"kind":"#)?;
    let kind = cursor.string()?;
    cursor.literal(br#","reason":{"code":"#)?;
    let reason = ReasonMessage {
        code: cursor.string()?,
        phase: cursor.optional(br#","phase":"#, Cursor::string).ok()?,
        sw: cursor.optional(br#","sw":"#, Cursor::hex).ok()?,
        tag: cursor.optional(br#","tag":"#, Cursor::hex).ok()?,
        error: cursor.optional(br#","error":"#, Cursor::string).ok()?,
        value: cursor.optional(br#","value":"#, Cursor::byte).ok()?,
    };
    cursor.literal(br#"},"ui_message":{"id":"#)?;
    let id = cursor.byte()?;
    cursor.literal(br#","text":"#)?;
    let ui_message = UiMessageMessage {
        id,
        text: cursor.string()?,
    };
    cursor.literal(br#"},"cvm":"#)?;
    let cvm = cursor.nullable(Cursor::string).ok()?;
    cursor.literal(br#","cvm_results":"#)?;
    let cvm_results = cursor.nullable(Cursor::hex).ok()?;
    cursor.literal(br#","oda":{"status":"#)?;
    let oda = OdaMessage {
        status: cursor.string()?,
        method: cursor.optional(br#","method":"#, Cursor::string).ok()?,
        error: cursor.optional(br#","error":"#, Cursor::string).ok()?,
    };
    cursor.literal(br#"},"tvr":"#)?;
    let tvr = cursor.hex()?;
    cursor.literal(br#","tsi":"#)?;
    let tsi = cursor.hex()?;
    cursor.literal(br#","kernel":"#)?;
    let kernel = cursor.nullable(Cursor::byte).ok()?;
    cursor.literal(br#","data":["#)?;
    let mut data = Vec::new();
    if cursor.literal(b"]").is_none() {
        loop {
            cursor.literal(br#"{"tag":"#)?;
            let tag = cursor.hex()?;
            cursor.literal(br#","value":"#)?;
            let value = cursor.hex()?;
            cursor.literal(b"}")?;
            data.push(DataObject { tag, value });
            if cursor.literal(b",").is_none() {
                cursor.literal(b"]")?;
                break;
            }
        }
    }
    cursor.literal(b"}}")?;
    if !cursor.0.is_empty() {
        return None;
    }
    Some(Box::new(Outcome {
        kind,
        reason,
        ui_message,
        cvm,
        cvm_results,
        oda,
        tvr,
        tsi,
        kernel,
        data,
    }))
}

/// The unread rest of the message.
struct Cursor<'a>(&'a [u8]);

/// The message departs from the kernel's layout here.
struct OtherLayout;

impl Cursor<'_> {
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(literal)?;
        Some(())
    }

    /// `Ok(None)` when the key is absent, `Ok(Some(value))` when present, an error when it is
    /// present but its value is not of the layout.
    fn optional<T>(
        &mut self,
        key: &[u8],
        value: fn(&mut Self) -> Option<T>,
    ) -> Result<Option<T>, OtherLayout> {
        if self.literal(key).is_none() {
            return Ok(None);
        }
        value(self).map(Some).ok_or(OtherLayout)
    }

    /// `null`, or a value.
    fn nullable<T>(&mut self, value: fn(&mut Self) -> Option<T>) -> Result<Option<T>, OtherLayout> {
        if self.literal(b"null").is_some() {
            return Ok(None);
        }
        value(self).map(Some).ok_or(OtherLayout)
    }

    /// A string without escapes (the kernel writes none); one with escapes is left to serde.
    fn string(&mut self) -> Option<String> {
        let rest = self.0.strip_prefix(b"\"")?;
        let end = rest.iter().position(|&byte| byte == b'"')?;
        let text = &rest[..end];
        if text.iter().any(|&byte| byte == b'\\' || byte < 0x20) {
            return None;
        }
        let text = core::str::from_utf8(text).ok()?;
        self.0 = &rest[end + 1..];
        Some(String::from(text))
    }

    fn hex(&mut self) -> Option<Hex> {
        Hex::parse(&self.string()?).ok()
    }

    /// A number from 0 to 255 as JSON writes it (no sign, no leading zero).
    fn byte(&mut self) -> Option<u8> {
        let digits = self
            .0
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        let (number, rest) = self.0.split_at(digits);
        if digits == 0 || digits > 3 || (digits > 1 && number[0] == b'0') {
            return None;
        }
        let value = number
            .iter()
            .fold(0_u16, |value, digit| value * 10 + u16::from(digit - b'0'));
        self.0 = rest;
        u8::try_from(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use alloc::borrow::ToOwned;

    use super::*;
    use crate::message::Output;

    const MESSAGE: &str = r#"{"type":"outcome","outcome":{"kind":"online_request","reason":{"code":"card_requested_online"},"ui_message":{"id":27,"text":"Authorising Please Wait"},"cvm":"no_cvm","cvm_results":"1F0302","oda":{"status":"succeeded","method":"cda"},"tvr":"0000008000","tsi":"E800","kernel":2,"data":[{"tag":"9F26","value":"815B6B8D6E14F178"},{"tag":"5A","value":"5413330089010434"}]}}"#;

    fn serde(message: &str) -> Option<Box<Outcome>> {
        match serde_json::from_str(message) {
            Ok(Output::Outcome { outcome }) => Some(outcome),
            _ => None,
        }
    }

    #[test]
    fn the_kernel_layout_reads_as_serde_reads_it() {
        let outcome = outcome_message(MESSAGE.as_bytes()).unwrap();
        assert_eq!(Some(outcome.clone()), serde(MESSAGE));
        assert_eq!(outcome.kernel, Some(2));
        assert_eq!(outcome.data.len(), 2);
        let empty = MESSAGE.replace(
            r#"[{"tag":"9F26","value":"815B6B8D6E14F178"},{"tag":"5A","value":"5413330089010434"}]"#,
            "[]",
        );
        assert!(outcome_message(empty.as_bytes()).unwrap().data.is_empty());
    }

    #[test]
    fn any_other_layout_is_left_to_serde() {
        // Valid JSON that serde reads, in another layout: not this reader's.
        for other in [
            MESSAGE.replace(
                r#""kind":"online_request","#,
                r#""kind": "online_request","#,
            ),
            MESSAGE
                .replace(r#"{"type":"outcome","outcome":"#, r#"{"outcome":"#)
                .replace("]}}", r#"]},"type":"outcome"}"#),
            MESSAGE.replace("Authorising Please Wait", r"Authorising \u0050lease Wait"),
            MESSAGE.replace(r#""kernel":2"#, r#""kernel":2.0e0"#),
            MESSAGE.to_owned() + " ",
        ] {
            assert_eq!(outcome_message(other.as_bytes()), None, "{other}");
        }
        assert!(
            serde(&MESSAGE.replace(
                r#""kind":"online_request","#,
                r#""kind": "online_request","#
            ))
            .is_some()
        );
        // Not JSON serde accepts either: refused here too.
        for bad in [
            MESSAGE.replace(r#""kernel":2"#, r#""kernel":02"#),
            MESSAGE.replace(r#""kernel":2"#, r#""kernel":256"#),
            MESSAGE.replace(r#""tsi":"E800""#, r#""tsi":"E80""#),
            MESSAGE.replace(r#""id":27"#, r#""id":-27"#),
            MESSAGE[..MESSAGE.len() - 1].to_owned(),
            MESSAGE.to_owned() + "x",
        ] {
            assert_eq!(outcome_message(bad.as_bytes()), None, "{bad}");
        }
        assert!(serde(&MESSAGE.replace(r#""kernel":2"#, r#""kernel":256"#)).is_none());
    }
}
