//! The terminal core against a real `softpos-server`: register → approve → inject → health →
//! token → sale, approved and declined; online PIN right and wrong; a crash between the DUKPT
//! counter advance and the submission.

use std::sync::Arc;

use kernel_host::NativeKernel;
use terminal::client::{Client, ClientError};
use terminal::health::{AppFacts, Compromise, HealthCollector};
use terminal::money;
use terminal::payment::{self, CardSpec, FixedPin, PaymentRequest, ReaderConfig};
use terminal::store::{DeviceConfig, KdfParams, SecureStore, StoreKey};
use zeroize::Zeroizing;

use crate::core_server::{TestServer, memory_store, onboarded};

fn usd(amount_minor: u64) -> PaymentRequest {
    PaymentRequest {
        amount_minor,
        currency: money::currency("USD").unwrap(),
        location: None,
        idempotency_key: None,
    }
}

async fn sale(
    client: &Client,
    card: &str,
    amount_minor: u64,
    pin: FixedPin,
) -> Result<payment::PaymentResult, payment::PaymentError> {
    let mut kernel = NativeKernel::new();
    let mut card = payment::card::open(&CardSpec::Virtual(card.to_owned())).unwrap();
    let mut pin = pin;
    payment::pay(
        client,
        &mut kernel,
        &ReaderConfig::default(),
        card.as_mut(),
        &mut pin,
        &usd(amount_minor),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_inject_health_token_and_pay() {
    let server = TestServer::start();
    let admin = server.admin().await;
    let merchant = admin.prepare_payments().await;
    let client = onboarded(&server, &admin, merchant, memory_store()).await;
    let key_set = client.store().active_key_set().expect("active key set");
    assert_eq!(key_set.next_counter, Some(1));
    // Same machine, same clock: the measured skew is within the round trip.
    assert!(client.measure_clock_skew().await.unwrap().abs() < 5_000);
    let status = client.key_status().await.unwrap();
    assert_eq!(status.key_set_id, key_set.id);
    assert!(!status.rotation_due);

    // The token is fetched ahead and used by the next sale.
    client.prefetch_token().await.unwrap();
    let approved = sale(&client, "mc-cda", 2_000, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(
        approved.transaction.state, "APPROVED",
        "{:?}",
        approved.transaction
    );
    assert_eq!(approved.transaction.response_code.as_deref(), Some("00"));
    assert!(approved.transaction.approved);
    assert!(!approved.online_pin);
    assert_eq!(approved.transaction.ksn, approved.ksn);
    assert_eq!(approved.ksn.len(), 24, "AES DUKPT KSN is 12 bytes");
    let pan = emv_cards::Card::profile("mc-cda").unwrap().pan().to_owned();
    assert!(
        approved
            .transaction
            .pan_masked
            .ends_with(&pan[pan.len() - 4..])
    );
    assert!(!serde_json::to_string(&approved).unwrap().contains(&pan));
    let t = approved.timings;
    assert!(t.total >= t.token + t.kernel + t.keys + t.pin + t.authorization);
    assert!(t.kernel > std::time::Duration::ZERO && t.authorization > std::time::Duration::ZERO);

    // Insufficient funds: the issuer simulator declines amounts ending in 51.
    let declined = sale(&client, "mc-cda", 2_051, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(declined.transaction.state, "DECLINED");
    assert_eq!(declined.transaction.response_code.as_deref(), Some("51"));
    assert_eq!(
        declined.transaction.decline_reason.as_deref(),
        Some("insufficient_funds")
    );
    assert_ne!(declined.ksn, approved.ksn, "every sale has its own KSN");

    // A Visa card, too.
    let visa = sale(&client, "visa-fdda", 1_234, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(visa.transaction.state, "APPROVED", "{:?}", visa.transaction);
    assert_eq!(
        client.store().active_key_set().unwrap().next_counter,
        Some(4)
    );

    // Past the rotation threshold the terminal rotates its key set after the sale, and the
    // next sale runs on the new key set from counter 1.
    let old_set = client.store().active_key_set().unwrap();
    client.store().set_rotate_after(Some(4)).unwrap();
    let rotating = sale(&client, "mc-cda", 1_100, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(rotating.transaction.state, "APPROVED");
    assert_eq!(rotating.rotation, terminal::dukpt::RotationAdvice::Advised);
    assert_eq!(rotating.key_rotation.as_deref(), Some("rotated"));
    let new_set = client.store().active_key_set().unwrap();
    assert_ne!(new_set.id, old_set.id);
    assert_eq!(new_set.version, old_set.version + 1);
    assert_eq!(new_set.next_counter, Some(1));
    let after = sale(&client, "visa-fdda", 1_200, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(
        after.transaction.state, "APPROVED",
        "{:?}",
        after.transaction
    );
    assert_eq!(after.rotation, terminal::dukpt::RotationAdvice::NotNeeded);
    assert_eq!(client.key_status().await.unwrap().key_set_id, new_set.id);

    // The same idempotency key with the same body replays; nothing new is charged.
    let replayed = sale_with_key(&client, &approved.idempotency_key).await;
    assert_eq!(
        replayed.code(),
        "idempotency_key_reused",
        "a new KSN makes a new body"
    );
}

async fn sale_with_key(client: &Arc<Client>, key: &str) -> payment::PaymentError {
    let mut kernel = NativeKernel::new();
    let mut card = payment::card::open(&CardSpec::Virtual("mc-cda".to_owned())).unwrap();
    let mut request = usd(2_000);
    request.idempotency_key = Some(key.to_owned());
    payment::pay(
        client,
        &mut kernel,
        &ReaderConfig::default(),
        card.as_mut(),
        &mut FixedPin::none(),
        &request,
    )
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_pin_right_and_wrong() {
    let server = TestServer::start();
    let admin = server.admin().await;
    let merchant = admin.prepare_payments().await;
    let client = onboarded(&server, &admin, merchant, memory_store()).await;
    let right = emv_cards::Card::profile("visa-online-pin")
        .unwrap()
        .test_pin();
    let wrong = if right == "9999" { "1111" } else { "9999" };

    let approved = sale(&client, "visa-online-pin", 4_000, FixedPin::new(right))
        .await
        .unwrap();
    assert!(approved.online_pin);
    assert_eq!(approved.cvm.as_deref(), Some("online_pin"));
    assert_eq!(
        approved.transaction.state, "APPROVED",
        "{:?}",
        approved.transaction
    );
    assert!(approved.transaction.online_pin);

    let declined = sale(&client, "visa-online-pin", 4_000, FixedPin::new(wrong))
        .await
        .unwrap();
    assert_eq!(declined.transaction.state, "DECLINED");
    assert_eq!(declined.transaction.response_code.as_deref(), Some("55"));

    // No PIN to give: nothing is sent.
    let err = sale(&client, "visa-online-pin", 4_000, FixedPin::none())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "pin_unavailable");

    // The key profile moves to TDES DUKPT: the terminal rotates into a TDES key set and its
    // PIN blocks become ISO format 0 under the TDES PIN variant key.
    let tdes_bdk = admin
        .generate_active(
            serde_json::json!({ "name": "tdes bdk", "usage": "bdk", "algorithm": "tdes2" }),
        )
        .await;
    admin
        .put(
            "/api/v1/keys/profiles/softpos",
            serde_json::json!({ "scheme": "tdes", "bdk_id": tdes_bdk["id"], "rotate_after": 1000 }),
        )
        .await;
    client.inject_keys().await.unwrap();
    let set = client.store().active_key_set().unwrap();
    assert_eq!(set.scheme, terminal::dukpt::DukptScheme::Tdes);
    let tdes = sale(&client, "visa-online-pin", 4_000, FixedPin::new(right))
        .await
        .unwrap();
    assert_eq!(tdes.ksn.len(), 20, "TDES DUKPT KSN is 10 bytes");
    assert_eq!(tdes.transaction.state, "APPROVED", "{:?}", tdes.transaction);
    let wrong_tdes = sale(&client, "visa-online-pin", 4_000, FixedPin::new(wrong))
        .await
        .unwrap();
    assert_eq!(wrong_tdes.transaction.response_code.as_deref(), Some("55"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_counter_advance_never_reuses_the_ksn() {
    let server = TestServer::start();
    let admin = server.admin().await;
    let merchant = admin.prepare_payments().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terminal.store");
    let key = || StoreKey::Passphrase {
        passphrase: Zeroizing::new("crash test passphrase".to_owned()),
        params: KdfParams::INSECURE_FAST,
    };
    let store = SecureStore::create(&path, &key(), DeviceConfig::default()).unwrap();
    let client = onboarded(&server, &admin, merchant, store).await;

    let first = sale(&client, "mc-cda", 1_500, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(first.transaction.state, "APPROVED");
    // The terminal takes the keys of the next transaction (the counter is advanced and
    // written), then "crashes" before it submits anything.
    let burnt = client.store().next_transaction_keys().unwrap();
    drop(burnt);
    drop(client);

    let reopened = Arc::new(SecureStore::open(&path, &key()).unwrap());
    assert_eq!(reopened.active_key_set().unwrap().next_counter, Some(3));
    let client = Client::new(reopened).unwrap();
    let after = sale(&client, "mc-cda", 1_600, FixedPin::none())
        .await
        .unwrap();
    assert_eq!(
        after.transaction.state, "APPROVED",
        "{:?}",
        after.transaction
    );
    let counter = |ksn: &str| u32::from_str_radix(&ksn[16..], 16).unwrap();
    assert_eq!(counter(&first.ksn), 1);
    assert_eq!(
        counter(&after.ksn),
        3,
        "counter 2 was burnt by the crash, never reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hooked_device_fails_its_health_check_and_gets_no_token() {
    let server = TestServer::start();
    let admin = server.admin().await;
    let merchant = admin.prepare_payments().await;
    let client = onboarded(&server, &admin, merchant, memory_store()).await;
    let mut collector = HealthCollector::simulated(AppFacts::development());
    collector.injected = Compromise::Hooked.signals();
    let verdict = client.report_health(&collector).await.unwrap();
    assert!(!verdict.passed);
    assert!(
        verdict.failed_checks.contains(&"hook_framework".to_owned()),
        "{verdict:?}"
    );
    let err = client.issue_token().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { status: 409, .. }),
        "{err:?}"
    );
    let err = sale(&client, "mc-cda", 1_000, FixedPin::none())
        .await
        .unwrap_err();
    assert_ne!(err.code(), "transport");
}
