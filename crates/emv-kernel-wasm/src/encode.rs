//! The outcome message (`{"type":"outcome","outcome":{...}}`, `ABI.md`) written straight from
//! the kernel's outcome, byte for byte what serde writes for [`Output::from`] of it.
//!
//! Why not serde: in the `.wasm` the outcome message was most of a short transaction's own
//! cost: [`Output::from`] builds a dozen owned strings only to copy them out again, and serde's
//! writer copies each key and string in three pieces. Here every fixed part (keys, punctuation)
//! is one copy and nothing is allocated but the message. The tests check the bytes against
//! serde's for every reason, ODA status and data record shape; the conformance suite checks
//! them against the native path (which still uses serde) for every card.
//!
//! [`Output::from`]: crate::message::Output

use alloc::vec::Vec;

use emv_kernel::Outcome;

use crate::message::{OdaView, ReasonView, cvm_name, kind_name};

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// The outcome message of `outcome`.
#[must_use]
pub fn outcome_message(outcome: &Outcome) -> Vec<u8> {
    let mut out = Vec::with_capacity(320 + outcome.data.len() * 48);
    out.extend_from_slice(br#"{"type":"outcome","outcome":{"kind":"#);
    string(&mut out, kind_name(outcome.kind));

    let reason = ReasonView::from(&outcome.reason);
    out.extend_from_slice(br#","reason":{"code":"#);
    string(&mut out, reason.code);
    optional_string(&mut out, br#","phase":"#, reason.phase);
    if let Some(sw) = reason.sw {
        out.extend_from_slice(br#","sw":"#);
        hex(&mut out, &sw);
    }
    if let Some(tag) = reason.tag {
        out.extend_from_slice(br#","tag":"#);
        hex(&mut out, &tag.to_vec());
    }
    optional_string(&mut out, br#","error":"#, reason.error);
    if let Some(value) = reason.value {
        out.extend_from_slice(br#","value":"#);
        decimal(&mut out, value);
    }

    let ui = outcome.ui_message();
    out.extend_from_slice(br#"},"ui_message":{"id":"#);
    decimal(&mut out, ui.identifier());
    out.extend_from_slice(br#","text":"#);
    string(&mut out, ui.text());

    out.extend_from_slice(br#"},"cvm":"#);
    match outcome.cvm {
        Some(cvm) => string(&mut out, cvm_name(cvm)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","cvm_results":"#);
    match &outcome.cvm_results {
        Some(results) => hex(&mut out, &results.0),
        None => out.extend_from_slice(b"null"),
    }

    let oda = OdaView::from(&outcome.oda);
    out.extend_from_slice(br#","oda":{"status":"#);
    string(&mut out, oda.status);
    optional_string(&mut out, br#","method":"#, oda.method);
    optional_string(&mut out, br#","error":"#, oda.error);

    out.extend_from_slice(br#"},"tvr":"#);
    hex(&mut out, &outcome.tvr.bytes());
    out.extend_from_slice(br#","tsi":"#);
    hex(&mut out, &outcome.tsi.bytes());
    out.extend_from_slice(br#","kernel":"#);
    match outcome.kernel {
        Some(kernel) => decimal(&mut out, kernel),
        None => out.extend_from_slice(b"null"),
    }

    out.extend_from_slice(br#","data":["#);
    let mut first = true;
    for tag in outcome.data.tags() {
        let Some(value) = outcome.data.get(tag) else {
            continue;
        };
        out.extend_from_slice(if first { br#"{"tag":"# } else { br#",{"tag":"# });
        first = false;
        hex(&mut out, &tag.to_vec());
        out.extend_from_slice(br#","value":"#);
        hex(&mut out, value);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}}");
    out
}

/// `key` and the string, when there is one (serde skips `None` fields of the messages).
fn optional_string(out: &mut Vec<u8>, key: &[u8], text: Option<&str>) {
    if let Some(text) = text {
        out.extend_from_slice(key);
        string(out, text);
    }
}

/// A JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    // Every string the kernel writes (codes, names, display texts) needs no escape: one copy.
    if !bytes
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
    {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(br#"\""#),
            b'\\' => out.extend_from_slice(br"\\"),
            b'\n' => out.extend_from_slice(br"\n"),
            b'\r' => out.extend_from_slice(br"\r"),
            b'\t' => out.extend_from_slice(br"\t"),
            0x08 => out.extend_from_slice(br"\b"),
            0x0C => out.extend_from_slice(br"\f"),
            0x00..=0x1F => {
                out.extend_from_slice(br"\u00");
                out.push(b"0123456789abcdef"[usize::from(byte >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(byte & 0x0F)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// Bytes as a JSON string of upper-case hex.
fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2 + 2);
    out.push(b'"');
    for byte in bytes {
        out.extend_from_slice(&[
            HEX_DIGITS[usize::from(byte >> 4)],
            HEX_DIGITS[usize::from(byte & 0x0F)],
        ]);
    }
    out.push(b'"');
}

fn decimal(out: &mut Vec<u8>, value: u8) {
    if value >= 100 {
        out.push(b'0' + value / 100);
    }
    if value >= 10 {
        out.push(b'0' + value / 10 % 10);
    }
    out.push(b'0' + value % 10);
}

#[cfg(test)]
mod tests {
    use emv_kernel::apdu::StatusWord;
    use emv_kernel::cvm::{Cvm, CvmResults};
    use emv_kernel::oda::OdaError;
    use emv_kernel::outcome::{OdaMethod, OdaStatus, Phase, Reason};
    use emv_kernel::tvr::{TsiBit, TvrBit};
    use emv_kernel::{OutcomeKind, Step, Tag};

    use super::*;
    use crate::message::Output;

    fn serde_bytes(outcome: &Outcome) -> Vec<u8> {
        serde_json::to_vec(&Output::from(&Step::Done(outcome.clone()))).unwrap()
    }

    #[test]
    fn the_message_is_what_serde_writes_for_every_shape() {
        let reasons = [
            Reason::CardApproved,
            Reason::CardError {
                phase: Phase::SelectPpse,
                sw: StatusWord(0x6A82),
            },
            Reason::MalformedResponse {
                phase: Phase::ReadRecord,
                error: "tlv_truncated_value",
            },
            Reason::MissingData {
                phase: Phase::GenerateAc,
                tag: Tag::ApplicationCryptogram,
            },
            Reason::RedundantData {
                tag: Tag::ApplicationPan,
            },
            Reason::OdaFailed(OdaError::CaKeyNotFound),
            Reason::UnsupportedKernel(7),
            Reason::InvalidCryptogramType(0xC0),
            Reason::NoMutualApplication,
        ];
        let odas = [
            OdaStatus::NotPerformed,
            OdaStatus::Succeeded(OdaMethod::Cda),
            OdaStatus::Failed(OdaMethod::Fdda, OdaError::CaKeyExpired),
        ];
        let kinds = [
            OutcomeKind::Approved,
            OutcomeKind::OnlineRequest,
            OutcomeKind::TryAgain,
        ];
        let mut checked = 0;
        for (index, reason) in reasons.iter().enumerate() {
            for oda in &odas {
                for kind in kinds {
                    let mut outcome = Outcome::without_data(kind, reason.clone());
                    outcome.oda = oda.clone();
                    if index % 2 == 1 {
                        outcome.cvm = Some(Cvm::OnlinePin);
                        outcome.cvm_results = Some(CvmResults([0x42, 0x03, 0x00]));
                        outcome.kernel = Some(2);
                        outcome.tvr.set(TvrBit::CdaFailed);
                        outcome.tsi.set(TsiBit::OdaPerformed);
                        outcome
                            .data
                            .set(Tag::ApplicationPan, &[0x54, 0x13, 0x33, 0x00]);
                        outcome.data.set(Tag::ApplicationCryptogram, &[0x81; 8]);
                        outcome.data.set(Tag::TransactionDate, &[]);
                    }
                    let message = outcome_message(&outcome);
                    assert_eq!(message, serde_bytes(&outcome), "{outcome:?}");
                    // Read back, by the host's fast reader and by serde alike.
                    let expected = crate::message::Outcome::from(&outcome);
                    assert_eq!(
                        crate::decode::outcome_message(&message).as_deref(),
                        Some(&expected)
                    );
                    let Ok(Output::Outcome { outcome: read }) = serde_json::from_slice(&message)
                    else {
                        panic!("serde reads it");
                    };
                    assert_eq!(*read, expected);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, reasons.len() * odas.len() * kinds.len());
    }

    #[test]
    fn strings_and_numbers_are_written_as_serde_writes_them() {
        for text in [
            "plain",
            "quote \" and \\ back",
            "line\nfeed\t\r\u{8}\u{c}",
            "\u{1}\u{1f}",
            "é ✓",
        ] {
            let mut ours = Vec::new();
            string(&mut ours, text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        for value in [0_u8, 9, 10, 99, 100, 199, 255] {
            let mut ours = Vec::new();
            decimal(&mut ours, value);
            assert_eq!(ours, serde_json::to_vec(&value).unwrap());
        }
        let mut ours = Vec::new();
        hex(&mut ours, &[0x00, 0x9F, 0xAB, 0xFF]);
        assert_eq!(ours, br#""009FABFF""#.to_vec());
    }
}
