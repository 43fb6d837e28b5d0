//! API keys: shown once, stored hashed, scoped, last-used time, revocation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestApp, expect_error};

async fn api_key_lifecycle(app: TestApp) {
    let admin = app.admin_token().await;
    let res = app
        .req(Method::POST, "/api/v1/api-keys")
        .bearer_auth(&admin)
        .json(&json!({ "name": "acquirer sync", "scopes": ["merchants:read", "merchants:write"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("sbk_{}_", created["prefix"].as_str().unwrap())));
    assert!(created["last_used_at"].is_null());

    // The secret is not stored in clear and never listed again.
    let pool = app.db().await;
    let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, secret);
    assert_eq!(stored.len(), 64);
    let listed = app
        .req(Method::GET, "/api/v1/api-keys")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&secret));

    // Use it within its scopes.
    let res = app
        .req(Method::POST, "/api/v1/merchants")
        .header("x-api-key", &secret)
        .json(&json!({ "name": "Key Shop", "country": "FR", "mcc": "5812" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // Outside its scopes.
    let res = app
        .req(Method::GET, "/api/v1/audit/records")
        .header("x-api-key", &secret)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    // The merchant creation is attributed to the key in the audit log.
    let res = app
        .req(
            Method::GET,
            &format!("/api/v1/audit/records?actor=api_key:{id}"),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["records"][0]["action"], "merchant.created");

    let keys: Vec<Value> = app
        .req(Method::GET, "/api/v1/api-keys")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert!(key["last_used_at"].is_string(), "last_used_at not recorded");

    // Revoke; then it stops working; a second revoke is a conflict.
    let revoke = || {
        app.req(Method::POST, &format!("/api/v1/api-keys/{id}/revoke"))
            .bearer_auth(&admin)
            .json(&json!({ "reason": "rotated" }))
            .send()
    };
    assert_eq!(revoke().await.unwrap().status(), StatusCode::OK);
    let res = app
        .req(Method::GET, "/api/v1/merchants")
        .header("x-api-key", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    expect_error(
        revoke().await.unwrap(),
        StatusCode::CONFLICT,
        "api_key_already_revoked",
    )
    .await;

    // Bad input.
    let res = app
        .req(Method::POST, "/api/v1/api-keys")
        .bearer_auth(&admin)
        .json(&json!({ "name": "x", "scopes": ["root"] }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
    let res = app
        .req(Method::POST, "/api/v1/api-keys")
        .bearer_auth(&admin)
        .json(&json!({ "name": "x", "scopes": [] }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/api-keys/{}/revoke", uuid::Uuid::new_v4()),
        )
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

crate::on_both_backends!(api_key_lifecycle);
