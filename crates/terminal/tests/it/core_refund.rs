//! Device refunds and history (`/work/briefs/contract.md`: `POST
//! /api/v1/device/transactions/{id}/refunds`, `GET /api/v1/device/transactions`), against a
//! real server that has those endpoints.

use kernel_host::NativeKernel;
use terminal::client::Client;
use terminal::money;
use terminal::payment::{self, CardSpec, FixedPin, PaymentRequest, ReaderConfig};
use uuid::Uuid;

use crate::core_server::{TestServer, memory_store, onboarded};

async fn approved_sale(client: &Client, amount_minor: u64) -> Uuid {
    let mut card = payment::card::open(&CardSpec::Virtual("mc-cda".to_owned())).unwrap();
    let result = payment::pay(
        client,
        &mut NativeKernel::new(),
        &ReaderConfig::default(),
        card.as_mut(),
        &mut FixedPin::none(),
        &PaymentRequest {
            amount_minor,
            currency: money::currency("USD").unwrap(),
            location: None,
            idempotency_key: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        result.transaction.state, "APPROVED",
        "{:?}",
        result.transaction
    );
    result.transaction.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_and_history_of_the_own_sales_only() {
    let server = TestServer::start();
    let admin = server.admin().await;
    let merchant = admin.prepare_payments().await;
    let client = onboarded(&server, &admin, merchant, memory_store()).await;
    let other = onboarded(&server, &admin, merchant, memory_store()).await;

    let first = approved_sale(&client, 2_000).await;
    let second = approved_sale(&client, 3_000).await;
    let foreign = approved_sale(&other, 1_000).await;

    // History: own sales only, newest first, paged.
    let page = client.history(Some(10), None).await.unwrap();
    let ids: Vec<Uuid> = page.items.iter().map(|t| t.id).collect();
    assert_eq!(ids, [second, first]);
    assert!(!ids.contains(&foreign));
    let one = client.history(Some(1), None).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].id, second);
    let cursor = one.next_cursor.expect("a full page has a cursor");
    let rest = client.history(Some(1), Some(&cursor)).await.unwrap();
    assert_eq!(rest.items[0].id, first);

    // A partial refund, replayed with the same key: one refund.
    let key = Uuid::new_v4().to_string();
    let refunded = client
        .refund(first, 500, Some("customer returned an item"), &key)
        .await
        .unwrap();
    assert_eq!(refunded.refunded_minor, 500);
    let replayed = client
        .refund(first, 500, Some("customer returned an item"), &key)
        .await
        .unwrap();
    assert_eq!(replayed.refunded_minor, 500);

    // More than what is left: refused, nothing changes.
    let err = client
        .refund(first, 1_501, None, &Uuid::new_v4().to_string())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "refund_exceeds_captured");
    assert_eq!(err.status(), Some(422));
    // Another device's sale is not found for this one.
    let err = client
        .refund(foreign, 100, None, &Uuid::new_v4().to_string())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "transaction_not_found");
    assert_eq!(err.status(), Some(404));

    let rest = client
        .refund(first, 1_500, None, &Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_eq!(rest.refunded_minor, 2_000);
    assert_eq!(rest.state, "REFUNDED");
}
