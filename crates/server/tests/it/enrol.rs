//! A device enrolled through the real HTTP path, as a terminal does it, and the requests it
//! sends afterwards. Shared by the token, payment and key tests.
//!
//! Enrolment ([`TestApp::enrol`]): register with software attestation → approve (admin) →
//! signed health report on a fresh nonce → remote key injection (the device's ephemeral
//! P-256 key, ECDH, HKDF-SHA256 → AES-256 KEK, TR-31 version D unwrap, KCV check) → KCV
//! confirmation, which makes the device `ACTIVE`. The device side is computed here with
//! `p256`, `hkdf` and `payment-crypto`, never by server code; nothing is written to the
//! database directly.
//!
//! Afterwards an [`ActiveDevice`] asks `/api/v1/device/tokens` for Transaction Tokens and
//! builds sale bodies the way the terminal does: the kernel runs against an `emv-cards`
//! virtual card for the online request's DE 55, and the card data and the PIN block are
//! encrypted by `payment-crypto` under the keys of the DUKPT originator loaded with the
//! injected initial key.
//!
//! The server-wide keys come from the key API once per server ([`TestApp::payment_keys`]):
//! an AES-128 BDK (the key profiles pick the newest active one) and the zone PIN key of the
//! built-in `issuer-sim` processor connection.

use base64::Engine;
use emv_cards::Card;
use emv_kernel::{Date, OutcomeKind, Step, Tag, Transaction, TransactionParams};
use payment_crypto::dukpt::aes::{InitialKeyId, Originator, WorkingKeyUsage};
use payment_crypto::kcv::{KcvMethod, kcv};
use payment_crypto::pinblock::{ClearPin, Pan, PinBlockFormat};
use payment_crypto::{KeyAlgorithm, RandomSource, SecretKey};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::health::clean_report;
use crate::{TestApp, TestDevice, expect_json};

/// The built-in processor connection; its zone PIN key is stored under this name.
pub(crate) const PROCESSOR: &str = "issuer-sim";
/// HKDF salt of the RKI KEK, as `POST /api/v1/device/keys` documents it.
const RKI_SALT: &[u8] = b"SUNBAY-SOFTPOS-RKI-KEK-V1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// KCV as the key API shows it: TDES encrypts zeros, AES is CMAC-based (X9.24-1 / X9.24-3).
pub(crate) fn kcv_of(key: &SecretKey) -> String {
    let method = if key.algorithm().is_tdes() {
        KcvMethod::EncryptZeros
    } else {
        KcvMethod::Cmac
    };
    kcv(key, method).to_string()
}

/// A device's ephemeral P-256 key for one key request, and its public key (SEC1, base64).
pub(crate) fn ephemeral() -> (p256::SecretKey, String) {
    let key = p256::SecretKey::from_slice(crate::new_device_key().to_bytes().as_slice()).unwrap();
    let public = B64.encode(key.public_key().to_sec1_bytes());
    (key, public)
}

/// The device side of an injection: ECDH with the server's ephemeral key, the KEK by
/// HKDF-SHA256 (RFC 5869) over the shared x-coordinate with the documented salt and info,
/// then the TR-31 unwrap; checks usage `B1` and the KCV the server sent.
pub(crate) fn device_unwrap(
    device_id: &str,
    ephemeral: &p256::SecretKey,
    body: &Value,
) -> SecretKey {
    let server_public = B64
        .decode(body["server_public_key"].as_str().unwrap())
        .unwrap();
    let server_public = p256::PublicKey::from_sec1_bytes(&server_public).unwrap();
    let shared =
        p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), server_public.as_affine());
    let device_uuid: Uuid = device_id.parse().unwrap();
    let key_set: Uuid = body["key_set_id"].as_str().unwrap().parse().unwrap();
    let mut info = format!("softpos-rki-v1|{device_uuid}|{key_set}|").into_bytes();
    info.extend_from_slice(&server_public.to_sec1_bytes());
    info.extend_from_slice(&ephemeral.public_key().to_sec1_bytes());
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(RKI_SALT), shared.raw_secret_bytes().as_slice())
        .expand(&info, &mut okm)
        .unwrap();
    let kek = SecretKey::aes(&okm).unwrap();
    let (header, key) = payment_crypto::tr31::unwrap(&kek, body["key_block"].as_str().unwrap())
        .expect("the key block unwraps under the ECDH KEK");
    assert_eq!(
        header.key_usage,
        payment_crypto::tr31::KeyUsage::InitialDukptKey
    );
    assert_eq!(
        kcv_of(&key),
        body["kcv"].as_str().unwrap(),
        "KCV of the unwrapped key"
    );
    key
}

/// Generates a key through the key API (`body`: name, usage, algorithm, …) and activates it;
/// returns the activated key's view.
pub(crate) async fn generate_active(app: &TestApp, token: &str, body: Value) -> Value {
    let res = app
        .req(Method::POST, "/api/v1/keys/generate")
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let key = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(key["state"], "READY");
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/keys/{}/activate", key["id"].as_str().unwrap()),
        )
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let key = expect_json(res, StatusCode::OK).await;
    assert_eq!(key["state"], "ACTIVE");
    key
}

/// The keys a server needs before devices can be enrolled and pay (views from the key API).
#[derive(Debug, Clone)]
pub(crate) struct PaymentKeys {
    /// The AES-128 BDK device keys are derived from.
    pub(crate) bdk: Value,
    /// The `issuer-sim` zone PIN key (AES-128, PIN block format 4).
    pub(crate) zpk: Value,
}

impl TestApp {
    /// Generates and activates the BDK and the `issuer-sim` zone PIN key (once per server).
    pub(crate) async fn payment_keys(&self, admin: &str) -> PaymentKeys {
        let bdk = generate_active(
            self,
            admin,
            json!({ "name": "softpos BDK", "usage": "bdk", "algorithm": "aes128" }),
        )
        .await;
        let zpk = generate_active(
            self,
            admin,
            json!({
                "name": "issuer-sim ZPK", "usage": "zpk", "algorithm": "aes128",
                "processor": PROCESSOR, "pin_format": 4
            }),
        )
        .await;
        PaymentKeys { bdk, zpk }
    }

    /// Registers a device in `mode` (`softpos` or `pinpad`) for a new merchant and approves it.
    pub(crate) async fn approved_device(&self, admin: &str, mode: &str) -> TestDevice {
        let merchant = self.merchant(admin).await;
        let key = crate::new_device_key();
        let challenge = self.challenge().await;
        let mut body =
            self.registration(&challenge, &key, &merchant, crate::facts("Pixel 9", None));
        body["mode"] = json!(mode);
        let res = self.register(&body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = self
            .req(Method::POST, &format!("/api/v1/devices/{id}/approve"))
            .bearer_auth(admin)
            .json(&json!({ "reason": "enrolment" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        TestDevice { id, key }
    }

    /// Runs a key injection for `device` and unwraps it on the device side (not confirmed).
    pub(crate) async fn inject_keys(&self, device: &TestDevice) -> Injected {
        let (ephemeral, public) = ephemeral();
        let request = serde_json::to_vec(&json!({ "ephemeral_public_key": public })).unwrap();
        let res = self
            .signed(device, Method::POST, "/api/v1/device/keys", &request)
            .send()
            .await
            .unwrap();
        let body = expect_json(res, StatusCode::OK).await;
        assert_eq!(
            body["scheme"], "aes128",
            "the tests' originator is AES DUKPT"
        );
        let initial_key = device_unwrap(&device.id, &ephemeral, &body);
        Injected {
            key_set_id: body["key_set_id"].as_str().unwrap().parse().unwrap(),
            initial_key_id: InitialKeyId::from_slice(
                &hex::decode(body["initial_key_id"].as_str().unwrap()).unwrap(),
            )
            .unwrap(),
            initial_key,
        }
    }

    /// Confirms an injection's KCV; returns the activation answer.
    pub(crate) async fn confirm_keys(&self, device: &TestDevice, injected: &Injected) -> Value {
        let body = serde_json::to_vec(&json!({
            "key_set_id": injected.key_set_id,
            "kcv": kcv_of(&injected.initial_key),
        }))
        .unwrap();
        let res = self
            .signed(device, Method::POST, "/api/v1/device/keys/confirm", &body)
            .send()
            .await
            .unwrap();
        expect_json(res, StatusCode::OK).await
    }

    /// A `softpos` device taken to `ACTIVE` through the API (needs [`TestApp::payment_keys`]).
    pub(crate) async fn enrol(&self, admin: &str) -> ActiveDevice {
        self.enrol_as(admin, "softpos").await
    }

    /// A device in `mode` taken to `ACTIVE` through the API: approved, a passing health
    /// report, keys injected and confirmed.
    pub(crate) async fn enrol_as(&self, admin: &str, mode: &str) -> ActiveDevice {
        let device = self.approved_device(admin, mode).await;
        let report = self.report_ok(&device, &clean_report()).await;
        assert_eq!(report["passed"], true, "{report}");
        let injected = self.inject_keys(&device).await;
        let activation = self.confirm_keys(&device, &injected).await;
        assert_eq!(activation["key_set_state"], "ACTIVE", "{activation}");
        assert_eq!(activation["device_state"], "ACTIVE", "{activation}");
        assert!(activation["pending"].is_null(), "{activation}");
        ActiveDevice::new(device, injected)
    }
}

/// What a key injection gave the device.
pub(crate) struct Injected {
    /// Key set id.
    pub(crate) key_set_id: Uuid,
    /// The AES DUKPT initial key id.
    pub(crate) initial_key_id: InitialKeyId,
    /// The unwrapped initial key (test secret: scanned for at rest).
    pub(crate) initial_key: SecretKey,
}

/// A device in `ACTIVE` state with its injected DUKPT key.
pub(crate) struct ActiveDevice {
    /// Id and signing key.
    pub(crate) device: TestDevice,
    /// The key set the device was activated with.
    pub(crate) key_set_id: Uuid,
    /// The injected initial key (test secret: scanned for at rest).
    pub(crate) initial_key: SecretKey,
    /// The device's DUKPT originator over the injected key; each built sale advances it.
    pub(crate) originator: Originator,
}

impl std::fmt::Debug for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injected")
            .field("key_set_id", &self.key_set_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ActiveDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveDevice")
            .field("device", &self.device.id)
            .field("key_set_id", &self.key_set_id)
            .finish_non_exhaustive()
    }
}

/// A sale as the tests describe it.
#[derive(Debug, Clone)]
pub(crate) struct Sale {
    /// `emv-cards` profile name.
    pub(crate) card: &'static str,
    /// Minor units (USD).
    pub(crate) amount: u64,
    /// Online PIN entered by the cardholder, if any.
    pub(crate) pin: Option<String>,
    /// Flip a bit of the ARQC (9F26) after the kernel produced it.
    pub(crate) tamper_arqc: bool,
}

impl Sale {
    /// A plain sale of `amount` with `card`.
    pub(crate) fn new(card: &'static str, amount: u64) -> Self {
        Self {
            card,
            amount,
            pin: None,
            tamper_arqc: false,
        }
    }
}

struct OsRandom;
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }
}

impl ActiveDevice {
    fn new(device: TestDevice, injected: Injected) -> Self {
        let originator =
            Originator::load_initial_key(&injected.initial_key, injected.initial_key_id).unwrap();
        Self {
            device,
            key_set_id: injected.key_set_id,
            initial_key: injected.initial_key,
            originator,
        }
    }

    /// The device id.
    pub(crate) fn id(&self) -> &str {
        &self.device.id
    }

    /// Asks for a Transaction Token; the raw response.
    pub(crate) async fn request_token(&self, app: &TestApp) -> reqwest::Response {
        app.signed(&self.device, Method::POST, "/api/v1/device/tokens", b"{}")
            .send()
            .await
            .unwrap()
    }

    /// Asks for a Transaction Token; the issuance answer (token, token_id, kid, claims).
    pub(crate) async fn token_body(&self, app: &TestApp) -> Value {
        let res = self.request_token(app).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "token refused: {body}");
        body
    }

    /// A fresh Transaction Token.
    pub(crate) async fn token(&self, app: &TestApp) -> String {
        self.token_body(app).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Builds a sale body with `token` and the originator's next KSN: the kernel's online
    /// request, the card data under the data key and, with a PIN, a format 4 PIN block under
    /// the PIN key.
    pub(crate) fn sale(&mut self, token: &str, sale: &Sale) -> Value {
        let (card, mut emv) = tap(sale.card, sale.amount);
        if sale.tamper_arqc {
            let objects = emv_kernel::tlv::parse_all(&emv).unwrap();
            let mut tampered = Vec::new();
            for object in objects {
                let mut value = object.value.to_vec();
                if object.tag == Tag::ApplicationCryptogram {
                    value[7] ^= 0x01;
                }
                emv_kernel::tlv::encode(object.tag, &value, &mut tampered);
            }
            emv = tampered;
        }
        let ksn = self.originator.ksn().unwrap();
        let data_key = self
            .originator
            .derive_working_key(WorkingKeyUsage::DataEncryptionEncrypt, KeyAlgorithm::Aes128)
            .unwrap();
        let pin_key = self
            .originator
            .derive_working_key(WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
            .unwrap();
        self.originator.advance().unwrap();
        let psn = card.pan_sequence_number();
        let card_json = json!({
            "pan": card.pan(),
            "expiry": hex::encode(&card.expiry()[..2]),
            "pan_sequence_number": (psn >> 4) * 10 + (psn & 0x0F),
        });
        let card_data = payment_crypto::data::encrypt_with_zero_iv(
            &data_key,
            payment_crypto::data::Padding::Iso9797Method2,
            card_json.to_string().as_bytes(),
        )
        .unwrap();
        let pin_block = sale.pin.as_deref().map(|pin| {
            let block = payment_crypto::pinblock::encrypt_pin(
                &pin_key,
                PinBlockFormat::Iso4,
                &ClearPin::new(pin).unwrap(),
                Some(&Pan::new(card.pan()).unwrap()),
                &mut OsRandom,
            )
            .unwrap();
            hex::encode_upper(block.as_bytes())
        });
        json!({
            "token": token,
            "amount_minor": sale.amount,
            "currency": "USD",
            "emv_data": hex::encode_upper(&emv),
            "card_data": hex::encode_upper(&card_data),
            "pin_block": pin_block,
            "ksn": hex::encode_upper(ksn.to_bytes()),
            "location": { "latitude": 52.52, "longitude": 13.405, "accuracy_m": 20.0 },
        })
    }

    /// A signed `POST path` by this device, with `Idempotency-Key` if given.
    pub(crate) fn signed_post(
        &self,
        app: &TestApp,
        path: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> RequestBuilder {
        let req = app.signed(&self.device, Method::POST, path, body);
        match idempotency_key {
            Some(key) => req.header("idempotency-key", key),
            None => req,
        }
    }

    /// Submits a sale body with `idempotency_key`; status and JSON answer.
    pub(crate) async fn submit(
        &self,
        app: &TestApp,
        body: &Value,
        idempotency_key: &str,
    ) -> (StatusCode, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let res = self
            .signed_post(
                app,
                "/api/v1/device/transactions",
                &bytes,
                Some(idempotency_key),
            )
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// A whole sale: a fresh token, the body, a fresh idempotency key.
    pub(crate) async fn pay(&mut self, app: &TestApp, sale: &Sale) -> (StatusCode, Value) {
        let token = self.token(app).await;
        let body = self.sale(&token, sale);
        self.submit(app, &body, &Uuid::new_v4().to_string()).await
    }
}

/// Runs the kernel against a fresh virtual card; returns the card and the DE 55 data
/// without cardholder data (which travels only inside the encrypted card data).
pub(crate) fn tap(card_name: &str, amount: u64) -> (Card, Vec<u8>) {
    use chrono::Datelike;
    let mut card = Card::profile(card_name).unwrap();
    let today = chrono::Utc::now().date_naive();
    let mut un = [0u8; 4];
    getrandom::fill(&mut un).unwrap();
    let (mut transaction, mut step) = Transaction::new(TransactionParams {
        amount,
        amount_other: 0,
        currency_code: [0x08, 0x40],
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(
            u16::try_from(today.year()).unwrap(),
            u8::try_from(today.month()).unwrap(),
            u8::try_from(today.day()).unwrap(),
        )
        .unwrap(),
        time: [0x12, 0x00, 0x00],
        unpredictable_number: un,
        config: emv_cards::reader_config(),
    });
    let outcome = loop {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => break outcome,
        }
    };
    assert_eq!(
        outcome.kind,
        OutcomeKind::OnlineRequest,
        "{card_name} {amount}: {outcome:?}"
    );
    let cardholder = [0x56u32, 0x57, 0x5A, 0x5F20, 0x9F1F, 0x9F20, 0x9F0B, 0x9F6B];
    let mut emv = Vec::new();
    for tag in outcome.data.tags() {
        let raw = tag.to_vec();
        let number = raw.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        if cardholder.contains(&number) {
            continue;
        }
        emv_kernel::tlv::encode(tag, outcome.data.get(tag).unwrap(), &mut emv);
    }
    (card, emv)
}

/// The PAN of an `emv-cards` profile.
pub(crate) fn card_pan(name: &str) -> &'static str {
    Card::profile(name).unwrap().pan()
}
