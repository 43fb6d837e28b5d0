//! Payment orchestration: token, kernel against a card source, DUKPT keys, PIN entry when the
//! outcome asks for it, card data encryption, authorisation.
//!
//! [`pay`] runs one sale:
//! 1. **token**: the cached Transaction Token, or a new one ([`Client::take_token`]);
//! 2. **kernel**: the kernel (the signed `.wasm` through `kernel-host`, or the native kernel as
//!    a development fallback) runs against the card to an online request;
//! 3. **keys**: the secure store advances and persists the DUKPT counter, then hands out the
//!    PIN and data keys of the new KSN;
//! 4. **pin** (only when the outcome's CVM is `online_pin`): the PIN is read and turned at once
//!    into an ISO 9564 block (format 4 with AES DUKPT, 0 with TDES) under the PIN key; the clear
//!    PIN is zeroized;
//! 5. **authorization**: the card data (`{"pan","expiry","pan_sequence_number","track2"}`) is
//!    encrypted under the data key and the sale submitted with an `Idempotency-Key`, retried on
//!    transport failures with the same key and body.
//!
//! The result carries the time of each step; tap-to-result is their sum.
//!
//! # Security
//! The clear PAN and Track 2 exist only in zeroizing buffers between the kernel outcome and the
//! encryption; the EMV data sent in clear omits every cardholder tag (56, 57, 5A, 5F20, 9F1F,
//! 9F20, 9F0B, 9F6B). Errors never carry card data.

pub mod card;
pub mod pin;

use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use kernel_host::{CardSource, Kernel, SessionParams};
use payment_crypto::RandomSource;
use payment_crypto::pinblock::{ClearPin, Pan};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::client::{Client, ClientError, GeoPoint, SaleBody, TransactionView};
use crate::dukpt::{RotationAdvice, TransactionKeys};
use crate::money::{self, Currency};
use crate::store::{SecureStore, StoreError};
pub use card::{CardSourceError, CardSpec};
pub use pin::{FixedPin, PinError, PinPrompt, PinSource, TerminalPin};

/// Tags never sent in clear (they travel inside the encrypted card data, or not at all).
const CARDHOLDER_TAGS: [&str; 8] = ["56", "57", "5A", "5F20", "9F1F", "9F20", "9F0B", "9F6B"];

/// The reader's configuration for the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Terminal country (`9F1A`), ISO 3166-1 numeric.
    pub country: u16,
    /// Reader Contactless Transaction Limit, minor units.
    pub transaction_limit: Option<u64>,
    /// Reader Contactless Floor Limit, minor units (0: every sale goes online).
    pub floor_limit: Option<u64>,
    /// Reader CVM Required Limit, minor units.
    pub cvm_required_limit: Option<u64>,
    /// Terminal Transaction Qualifiers for Kernel 3.
    pub ttq: [u8; 4],
}

impl Default for ReaderConfig {
    /// An online-only SoftPOS reader: floor limit 0, CVM required from 30.00, transaction limit
    /// 1,000.00, online PIN supported (TTQ `27004000`), United States (the test cards').
    fn default() -> Self {
        Self {
            country: 840,
            transaction_limit: Some(100_000),
            floor_limit: Some(0),
            cvm_required_limit: Some(3_000),
            ttq: [0x27, 0x00, 0x40, 0x00],
        }
    }
}

impl ReaderConfig {
    /// The kernel's session parameters for one transaction (the test CA keys of `emv-cards`,
    /// the Visa and Mastercard AIDs).
    #[must_use]
    pub fn session_params(
        &self,
        amount_minor: u64,
        currency: Currency,
        now: chrono::DateTime<Utc>,
        unpredictable_number: [u8; 4],
    ) -> SessionParams {
        let mut params = kernel_host::conformance::params(amount_minor, 0);
        let hex = |bytes: &[u8]| emv_kernel_wasm_hex(bytes);
        params.currency_code = hex(&currency.bcd());
        params.currency_exponent = currency.exponent;
        params.date = now.format("%Y-%m-%d").to_string();
        let bcd = |value: u32| u8::try_from((value / 10) << 4 | (value % 10)).unwrap_or(0);
        params.time = hex(&[bcd(now.hour()), bcd(now.minute()), bcd(now.second())]);
        params.unpredictable_number = hex(&unpredictable_number);
        params.terminal.country_code = hex(&money::numeric_bcd(self.country));
        for aid in &mut params.terminal.aids {
            aid.transaction_limit = self.transaction_limit;
            aid.floor_limit = self.floor_limit;
            aid.cvm_required_limit = self.cvm_required_limit;
            if aid.kernel == 3 {
                aid.ttq = Some(hex(&self.ttq));
            }
        }
        params
    }
}

fn emv_kernel_wasm_hex(bytes: &[u8]) -> emv_kernel_wasm::message::Hex {
    emv_kernel_wasm::message::Hex(bytes.to_vec())
}

/// One sale to run.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    /// Amount, minor units.
    pub amount_minor: u64,
    /// Currency.
    pub currency: Currency,
    /// Where the terminal is.
    pub location: Option<GeoPoint>,
    /// Idempotency key (a fresh UUID when `None`).
    pub idempotency_key: Option<String>,
}

/// Time spent in each step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepTimings {
    /// Taking (or fetching) the token.
    #[serde(with = "millis")]
    pub token: Duration,
    /// Running the kernel against the card.
    #[serde(with = "millis")]
    pub kernel: Duration,
    /// Advancing and persisting DUKPT, encrypting the card data.
    #[serde(with = "millis")]
    pub keys: Duration,
    /// PIN entry and PIN block (zero without online PIN).
    #[serde(with = "millis")]
    pub pin: Duration,
    /// Submitting the sale until the answer.
    #[serde(with = "millis")]
    pub authorization: Duration,
    /// Tap to result: all of the above.
    #[serde(with = "millis")]
    pub total: Duration,
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

/// The result of a sale that reached the server.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentResult {
    /// The transaction as the server recorded it (approved or declined).
    pub transaction: TransactionView,
    /// The kernel's outcome kind (`online_request`).
    pub outcome: String,
    /// The CVM the kernel chose.
    pub cvm: Option<String>,
    /// KSN used, hex.
    pub ksn: String,
    /// An online PIN was entered.
    pub online_pin: bool,
    /// The idempotency key the sale was sent with.
    pub idempotency_key: String,
    /// Whether the key set should be rotated now.
    pub rotation: RotationAdvice,
    /// When rotation was advised: `rotated` once a new key set is active, else the error code
    /// of the attempt (the sale itself stands either way).
    pub key_rotation: Option<String>,
    /// Timings.
    pub timings: StepTimings,
}

/// A sale that did not reach a server answer. Codes are stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The kernel could not run the transaction (card removed, kernel fault, ...).
    #[error("kernel: {0}")]
    Kernel(String, &'static str),
    /// The kernel ended without an online request (`declined`, `end_application`, ...).
    #[error("the card session ended with {kind} ({reason})")]
    Outcome {
        /// Outcome kind.
        kind: String,
        /// Reason code.
        reason: String,
        /// Stable code.
        code: &'static str,
    },
    /// The outcome lacks card data the sale needs.
    #[error("the card did not provide {0}")]
    MissingCardData(&'static str),
    /// PIN entry failed.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The PIN or PAN does not form a PIN block (`pin_invalid` for a PIN of the wrong length).
    #[error("PIN block: {0}")]
    PinBlock(&'static str),
    /// Card data encryption failed.
    #[error("card data encryption: {0}")]
    Encryption(&'static str),
    /// The card source failed to open.
    #[error(transparent)]
    Card(#[from] CardSourceError),
    /// Secure store (DUKPT) failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server or the network.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl PaymentError {
    /// Stable machine-readable code (the server's for server refusals).
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Self::Kernel(_, code) | Self::PinBlock(code) => code,
            Self::Outcome { code, .. } => code,
            Self::MissingCardData(_) => "missing_card_data",
            Self::Pin(inner) => inner.code(),
            Self::Encryption(_) => "card_data_encryption",
            Self::Card(inner) => inner.code(),
            Self::Store(inner) => inner.code(),
            Self::Client(inner) => inner.code(),
        }
    }
}

struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random source is available");
    }
}

fn bcd_digits(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0F])
        .take_while(|nibble| *nibble <= 9)
        .map(|nibble| char::from(b'0' + nibble))
        .collect()
}

/// What the card gave, in clear, zeroized on drop.
struct CardData {
    pan: Zeroizing<String>,
    /// `YYMM`.
    expiry: String,
    pan_sequence_number: Option<u8>,
    track2: Option<Zeroizing<String>>,
}

impl CardData {
    fn from_outcome(data: &[(String, Vec<u8>)]) -> Result<Self, PaymentError> {
        let find = |tag: &str| {
            data.iter()
                .find(|(t, _)| t == tag)
                .map(|(_, value)| value.as_slice())
        };
        let track2 = find("57").map(|value| Zeroizing::new(hex::encode_upper(value)));
        let pan = match find("5A") {
            Some(value) => Zeroizing::new(bcd_digits(value)),
            None => {
                let text = track2
                    .as_ref()
                    .ok_or(PaymentError::MissingCardData("a PAN"))?;
                Zeroizing::new(text.split('D').next().unwrap_or_default().to_owned())
            }
        };
        if pan.is_empty() {
            return Err(PaymentError::MissingCardData("a PAN"));
        }
        let expiry = match find("5F24") {
            Some(value) if value.len() >= 2 => hex::encode(&value[..2]),
            _ => track2
                .as_ref()
                .and_then(|text| text.split('D').nth(1))
                .and_then(|rest| rest.get(..4))
                .map(str::to_owned)
                .ok_or(PaymentError::MissingCardData("an expiry date"))?,
        };
        let pan_sequence_number = find("5F34")
            .and_then(|value| value.first())
            .map(|psn| (psn >> 4) * 10 + (psn & 0x0F));
        Ok(Self {
            pan,
            expiry,
            pan_sequence_number,
            track2,
        })
    }

    fn json(&self) -> Zeroizing<Vec<u8>> {
        let mut object = serde_json::Map::new();
        object.insert("pan".to_owned(), self.pan.as_str().into());
        object.insert("expiry".to_owned(), self.expiry.as_str().into());
        if let Some(psn) = self.pan_sequence_number {
            object.insert("pan_sequence_number".to_owned(), psn.into());
        }
        if let Some(track2) = &self.track2 {
            object.insert("track2".to_owned(), track2.as_str().into());
        }
        let value = serde_json::Value::Object(object);
        let bytes = Zeroizing::new(serde_json::to_vec(&value).unwrap_or_default());
        drop(value);
        bytes
    }

    fn last4(&self) -> String {
        let len = self.pan.len();
        self.pan[len.saturating_sub(4)..].to_owned()
    }
}

/// The EMV data to send in clear: every data object of the outcome except cardholder data,
/// BER-TLV encoded in order.
fn emv_data(data: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, value) in data {
        if CARDHOLDER_TAGS.contains(&tag.as_str()) {
            continue;
        }
        let Ok(tag_bytes) = hex::decode(tag) else {
            continue;
        };
        out.extend_from_slice(&tag_bytes);
        emv_kernel::tlv::encode_length(value.len(), &mut out);
        out.extend_from_slice(value);
    }
    out
}

fn outcome_code(kind: &str) -> &'static str {
    match kind {
        "approved" => "offline_approved",
        "declined" => "offline_declined",
        "try_another_interface" => "try_another_interface",
        "end_application" => "end_application",
        "try_again" => "try_again",
        _ => "kernel_outcome",
    }
}

/// The kernel's outcome, reduced to what the sale needs.
pub struct Tap {
    /// Outcome kind.
    pub kind: String,
    /// CVM.
    pub cvm: Option<String>,
    /// Data objects (tag hex, value), in order. Holds cardholder data: zeroized on drop.
    data: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("kind", &self.kind)
            .field("cvm", &self.cvm)
            .field("data_objects", &self.data.len())
            .finish()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, value) in &mut self.data {
            value.zeroize();
        }
    }
}

/// Runs the kernel against the card for `request` (step 2 alone; [`pay`] does it all).
///
/// # Errors
/// [`PaymentError::Kernel`].
pub fn tap(
    kernel: &mut (dyn Kernel + Send),
    reader: &ReaderConfig,
    card: &mut (dyn CardSource + Send),
    request: &PaymentRequest,
) -> Result<Tap, PaymentError> {
    let mut un = [0u8; 4];
    OsRandom.fill(&mut un);
    let params = reader.session_params(request.amount_minor, request.currency, Utc::now(), un);
    let transcript = kernel.run(&params, card).map_err(|e| {
        // A card that failed is the card's problem, not the kernel's: name it apart.
        let code = match &e {
            kernel_host::HostError::Card(kernel_host::CardError::Removed) => "card_removed",
            kernel_host::HostError::Card(_) => "card_transport",
            other => other.code(),
        };
        PaymentError::Kernel(e.to_string(), code)
    })?;
    let outcome = transcript.outcome;
    Ok(Tap {
        kind: outcome.kind.clone(),
        cvm: outcome.cvm.clone(),
        data: outcome
            .data
            .iter()
            .map(|object| (hex::encode_upper(&object.tag.0), object.value.0.clone()))
            .collect(),
    })
}

/// Steps 2 to 4 of [`pay`] (kernel, keys and card data, PIN): the sale body for `token`.
#[allow(clippy::too_many_arguments)]
fn prepare_sale(
    store: &SecureStore,
    kernel: &mut (dyn Kernel + Send),
    reader: &ReaderConfig,
    card: &mut (dyn CardSource + Send),
    pin_source: &mut (dyn PinSource + Send),
    request: &PaymentRequest,
    token: &str,
    timings: &mut StepTimings,
) -> Result<(SaleBody, TransactionKeys, Option<String>), PaymentError> {
    let step = Instant::now();
    let tapped = tap(kernel, reader, card, request)?;
    timings.kernel = step.elapsed();
    if tapped.kind != "online_request" {
        return Err(PaymentError::Outcome {
            code: outcome_code(&tapped.kind),
            reason: tapped.kind.clone(),
            kind: tapped.kind.clone(),
        });
    }
    let card_data = CardData::from_outcome(&tapped.data)?;

    let step = Instant::now();
    let keys = store.next_transaction_keys()?;
    let card_json = card_data.json();
    let encrypted = payment_crypto::data::encrypt_with_zero_iv(
        keys.data_key(),
        payment_crypto::data::Padding::Iso9797Method2,
        &card_json,
    )
    .map_err(|e| PaymentError::Encryption(payment_crypto::ErrorCode::code(&e)))?;
    drop(card_json);
    timings.keys = step.elapsed();

    let cvm = tapped.cvm.clone();
    let online_pin = cvm.as_deref() == Some("online_pin");
    let pin_block = if online_pin {
        let step = Instant::now();
        let prompt = PinPrompt {
            amount: format!(
                "{} {}",
                money::format_amount(request.amount_minor, request.currency.exponent),
                request.currency.alpha
            ),
            pan_last4: card_data.last4(),
        };
        let text = pin_source.read_pin(&prompt)?;
        let clear = ClearPin::new(&text)
            .map_err(|e| PaymentError::PinBlock(payment_crypto::ErrorCode::code(&e)))?;
        drop(text);
        let pan = Pan::new(&card_data.pan)
            .map_err(|e| PaymentError::PinBlock(payment_crypto::ErrorCode::code(&e)))?;
        let block = payment_crypto::pinblock::encrypt_pin(
            keys.pin_key(),
            keys.scheme.pin_block_format(),
            &clear,
            Some(&pan),
            &mut OsRandom,
        )
        .map_err(|e| PaymentError::PinBlock(payment_crypto::ErrorCode::code(&e)))?;
        drop(clear);
        timings.pin = step.elapsed();
        Some(hex::encode_upper(block.as_bytes()))
    } else {
        None
    };

    let sale = SaleBody {
        token: token.to_owned(),
        amount_minor: request.amount_minor,
        currency: request.currency.alpha.to_owned(),
        emv_data: hex::encode_upper(emv_data(&tapped.data)),
        card_data: hex::encode_upper(&encrypted),
        card_data_iv: None,
        pin_block,
        ksn: keys.ksn_hex(),
        location: request.location,
    };
    drop(card_data);
    drop(tapped);
    Ok((sale, keys, cvm))
}

/// Runs one sale (see the module doc).
///
/// # Errors
/// [`PaymentError`]: kernel, outcome without online request, PIN, store, server, network.
pub async fn pay(
    client: &Client,
    kernel: &mut (dyn Kernel + Send),
    reader: &ReaderConfig,
    card: &mut (dyn CardSource + Send),
    pin_source: &mut (dyn PinSource + Send),
    request: &PaymentRequest,
) -> Result<PaymentResult, PaymentError> {
    let started = Instant::now();
    let mut timings = StepTimings::default();

    let step = Instant::now();
    let token = client.take_token().await?;
    timings.token = step.elapsed();

    let (sale, keys, cvm) = match prepare_sale(
        client.store(),
        kernel,
        reader,
        card,
        pin_source,
        request,
        &token.token,
        &mut timings,
    ) {
        Ok(prepared) => prepared,
        Err(error) => {
            // Nothing was sent: the single-use token is still good for the next sale.
            client.restore_token(token).await;
            return Err(error);
        }
    };
    let online_pin = sale.pin_block.is_some();
    let idempotency_key = request
        .idempotency_key
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let step = Instant::now();
    let transaction = client.submit_sale(&sale, &idempotency_key).await?;
    timings.authorization = step.elapsed();
    timings.total = started.elapsed();
    // The counter nears its end (or the server's threshold): start a key rotation now, after
    // the sale, so the next one runs on the new key set.
    let key_rotation = if keys.rotation == RotationAdvice::NotNeeded {
        None
    } else {
        Some(match client.inject_keys().await {
            Ok(_) => "rotated".to_owned(),
            Err(error) => error.code().to_owned(),
        })
    };
    Ok(PaymentResult {
        transaction,
        outcome: "online_request".to_owned(),
        cvm,
        ksn: keys.ksn_hex(),
        online_pin,
        idempotency_key,
        rotation: keys.rotation,
        key_rotation,
        timings,
    })
}

/// The kernel to run: the installed, verified `.wasm` when there is one, else the native
/// kernel (development fallback). Returns the kernel and a description (`wasm 1.2.0 (wasmi)`
/// or `native`).
#[must_use]
pub fn choose_kernel(
    installed: Option<crate::client::kernel::InstalledKernel>,
) -> (Box<dyn Kernel + Send>, String) {
    match installed {
        Some(installed) => {
            let name = format!(
                "wasm {} ({})",
                installed.manifest.manifest.version,
                installed.kernel.name()
            );
            (Box::new(installed.kernel), name)
        }
        None => (
            Box::new(kernel_host::NativeKernel::new()),
            "native".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_data_and_clear_emv_data_split_cleanly() {
        let data = vec![
            (
                "5A".to_owned(),
                vec![0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10],
            ),
            ("5F24".to_owned(), vec![0x28, 0x12, 0x31]),
            ("5F34".to_owned(), vec![0x01]),
            ("57".to_owned(), vec![0x47, 0x61, 0xD2, 0x81]),
            ("9F26".to_owned(), vec![0xAA; 8]),
            ("9F02".to_owned(), vec![0x00, 0x00, 0x00, 0x00, 0x40, 0x00]),
        ];
        let card = CardData::from_outcome(&data).unwrap();
        assert_eq!(card.pan.as_str(), "4761739001010010");
        assert_eq!(card.expiry, "2812");
        assert_eq!(card.pan_sequence_number, Some(1));
        assert_eq!(card.last4(), "0010");
        let json: serde_json::Value = serde_json::from_slice(&card.json()).unwrap();
        assert_eq!(json["pan"], "4761739001010010");
        assert_eq!(json["track2"], "4761D281");
        // PAN (5A) and Track 2 (57) stay out; expiry and PAN sequence number may go in clear
        // (the server's list of refused tags).
        let clear = emv_data(&data);
        assert_eq!(
            hex::encode_upper(&clear),
            format!(
                "5F24032812315F3401019F2608{}9F0206000000004000",
                "AA".repeat(8)
            )
        );
    }

    #[test]
    fn a_missing_pan_is_typed() {
        let err = CardData::from_outcome(&[("9F26".to_owned(), vec![1])])
            .err()
            .unwrap();
        assert_eq!(err.code(), "missing_card_data");
    }
}
