//! TDES DUKPT payments end to end over HTTP: the softpos key profile pinned to a TDES BDK, a
//! device enrolled through the real endpoints receives a TDES IPEK (TR-31 under the ECDH KEK),
//! and its sales are built by `payment-crypto`'s TDES originator (ANSI X9.24-1:2009): card
//! data under the data request variant, an ISO 9564-1 format 0 PIN block under the PIN
//! variant. The server translates the PIN block to the `issuer-sim` zone PIN key (format 4)
//! and the simulated issuer checks it against the card's PIN.

use emv_cards::Card;
use payment_crypto::RandomSource;
use payment_crypto::dukpt::tdes::{Ksn, Originator};
use payment_crypto::pinblock::{ClearPin, Pan, PinBlockFormat};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::enrol::{device_unwrap, ephemeral, generate_active, kcv_of, tap};
use crate::{TestApp, TestDevice, expect_json};

struct OsRandom;
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }
}

/// An `ACTIVE` device holding a TDES DUKPT originator loaded with its injected IPEK.
struct TdesDevice {
    device: TestDevice,
    originator: Originator,
}

/// Pins the softpos profile to a new TDES BDK, then enrols a device through the API.
async fn enrol_tdes(app: &TestApp, admin: &str) -> TdesDevice {
    let bdk = generate_active(
        app,
        admin,
        json!({ "name": "softpos TDES BDK", "usage": "bdk", "algorithm": "tdes2" }),
    )
    .await;
    let res = app
        .req(Method::PUT, "/api/v1/keys/profiles/softpos")
        .bearer_auth(admin)
        .json(&json!({ "scheme": "tdes", "bdk_id": bdk["id"], "rotate_after": 100_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let device = app.approved_device(admin, "softpos").await;
    let report = app.report_ok(&device, &crate::health::clean_report()).await;
    assert_eq!(report["passed"], true, "{report}");
    let (secret, public) = ephemeral();
    let request = serde_json::to_vec(&json!({ "ephemeral_public_key": public })).unwrap();
    let res = app
        .signed(&device, Method::POST, "/api/v1/device/keys", &request)
        .send()
        .await
        .unwrap();
    let body = expect_json(res, StatusCode::OK).await;
    assert_eq!(body["scheme"], "tdes", "{body}");
    let ipek = device_unwrap(&device.id, &secret, &body);
    assert!(ipek.algorithm().is_tdes());
    let confirm = serde_json::to_vec(&json!({
        "key_set_id": body["key_set_id"],
        "kcv": kcv_of(&ipek),
    }))
    .unwrap();
    let res = app
        .signed(
            &device,
            Method::POST,
            "/api/v1/device/keys/confirm",
            &confirm,
        )
        .send()
        .await
        .unwrap();
    let activation: Value = res.json().await.unwrap();
    assert_eq!(activation["device_state"], "ACTIVE", "{activation}");
    let initial_ksn =
        Ksn::from_bytes(&hex::decode(body["initial_key_id"].as_str().unwrap()).unwrap()).unwrap();
    TdesDevice {
        device,
        originator: Originator::initialize(&ipek, &initial_ksn).unwrap(),
    }
}

impl TdesDevice {
    /// Token, tap, TDES DUKPT encryption, submission.
    async fn pay(
        &mut self,
        app: &TestApp,
        card_name: &str,
        amount: u64,
        pin: Option<&str>,
    ) -> Value {
        let res = app
            .signed(&self.device, Method::POST, "/api/v1/device/tokens", b"{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let token = res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (card, emv) = tap(card_name, amount);
        let keys = self.originator.next_transaction().unwrap();
        let psn = card.pan_sequence_number();
        let card_json = json!({
            "pan": card.pan(),
            "expiry": hex::encode(&card.expiry()[..2]),
            "pan_sequence_number": (psn >> 4) * 10 + (psn & 0x0F),
        });
        // X9.24-1:2009 A.4.1: the data request variant encrypts what the terminal sends.
        let card_data = payment_crypto::data::encrypt_with_zero_iv(
            &keys.data_request_key(),
            payment_crypto::data::Padding::Iso9797Method2,
            card_json.to_string().as_bytes(),
        )
        .unwrap();
        let pin_block = pin.map(|pin| {
            let block = payment_crypto::pinblock::encrypt_pin(
                &keys.pin_encryption_key(),
                PinBlockFormat::Iso0,
                &ClearPin::new(pin).unwrap(),
                Some(&Pan::new(card.pan()).unwrap()),
                &mut OsRandom,
            )
            .unwrap();
            hex::encode_upper(block.as_bytes())
        });
        let body = serde_json::to_vec(&json!({
            "token": token,
            "amount_minor": amount,
            "currency": "USD",
            "emv_data": hex::encode_upper(&emv),
            "card_data": hex::encode_upper(&card_data),
            "pin_block": pin_block,
            "ksn": hex::encode_upper(keys.ksn().as_bytes()),
        }))
        .unwrap();
        let res = app
            .signed(
                &self.device,
                Method::POST,
                "/api/v1/device/transactions",
                &body,
            )
            .header("idempotency-key", Uuid::new_v4().to_string())
            .send()
            .await
            .unwrap();
        expect_json(res, StatusCode::CREATED).await
    }
}

/// TDES DUKPT: online PIN approved with the card's PIN, declined `55` with a wrong one, and a
/// no-PIN sale approved; the KSNs recorded are the TDES ones.
async fn tdes_dukpt_sales_with_online_pin(app: TestApp) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let mut device = enrol_tdes(&app, &admin).await;
    let right = Card::profile("visa-online-pin").unwrap().test_pin();
    let wrong = if right == "9999" { "1111" } else { "9999" };

    let approved = device
        .pay(&app, "visa-online-pin", 4_000, Some(right))
        .await;
    assert_eq!(approved["state"], "APPROVED", "{approved}");
    assert_eq!(approved["online_pin"], true);
    assert_eq!(
        approved["ksn"].as_str().unwrap().len(),
        20,
        "a 10-byte TDES KSN"
    );
    let declined = device
        .pay(&app, "visa-online-pin", 4_000, Some(wrong))
        .await;
    assert_eq!(declined["state"], "DECLINED", "{declined}");
    assert_eq!(declined["response_code"], "55");
    assert_eq!(declined["decline_reason"], "incorrect_pin", "{declined}");
    let plain = device.pay(&app, "mc-cda", 2_000, None).await;
    assert_eq!(plain["state"], "APPROVED", "{plain}");
    assert_eq!(plain["online_pin"], false);
}

crate::on_both_backends!(tdes_dukpt_sales_with_online_pin);
