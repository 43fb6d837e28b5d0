//! Bad input on every endpoint family: malformed JSON, wrong types, unknown fields, missing
//! content type, oversized bodies, unknown and malformed ids, SQL-injection strings in every
//! filter. Each gets a clear 4xx with a code (or an empty result) and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{TestApp, expect_error};

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE merchants; --",
    "\" OR 1=1 --",
    "1; DELETE FROM users",
    "%' UNION SELECT password_hash FROM users --",
    "\\'; SELECT pg_sleep(5); --",
];

async fn malformed_bodies_are_refused(app: TestApp) {
    let admin = app.admin_token().await;
    let json_endpoints = [
        (Method::POST, "/api/v1/auth/login".to_owned(), false),
        (Method::POST, "/api/v1/auth/refresh".to_owned(), false),
        (Method::POST, "/api/v1/auth/password".to_owned(), true),
        (Method::POST, "/api/v1/users".to_owned(), true),
        (Method::POST, "/api/v1/api-keys".to_owned(), true),
        (Method::POST, "/api/v1/merchants".to_owned(), true),
    ];
    let merchants_before = app.count("merchants").await;
    let users_before = app.count("users").await;
    for (method, path, needs_auth) in &json_endpoints {
        let request = || {
            let req = app.req(method.clone(), path);
            if *needs_auth {
                req.bearer_auth(&admin)
            } else {
                req
            }
        };
        // Syntax error.
        let res = request()
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
        // Wrong types.
        let res = request()
            .json(&json!({ "username": 42, "password": [], "name": {}, "scopes": "all", "refresh_token": 7, "current_password": false }))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
        // Not JSON at all.
        let res = request().body("name=x").send().await.unwrap();
        expect_error(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        // Oversized (limit is 64 KiB by default). The server answers before reading the
        // whole body and drops the connection, so do not let the client reuse it.
        let res = request()
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024)))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
    // Unknown fields are refused, not ignored.
    let res = app
        .req(Method::POST, "/api/v1/merchants")
        .bearer_auth(&admin)
        .json(
            &json!({ "name": "X", "country": "DE", "mcc": "5411", "status": "active", "id": "1" }),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
    assert_eq!(app.count("merchants").await, merchants_before);
    assert_eq!(app.count("users").await, users_before);
}

async fn unknown_and_malformed_ids(app: TestApp) {
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/merchants/{unknown}"),
        format!("/api/v1/users/{unknown}"),
    ] {
        let res = app
            .req(Method::GET, &path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = app
        .req(Method::PATCH, &format!("/api/v1/merchants/{unknown}"))
        .bearer_auth(&admin)
        .json(&json!({ "mcc": "5411" }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    for path in [
        "/api/v1/merchants/not-a-uuid",
        "/api/v1/users/1%20OR%201=1",
        "/api/v1/auth/sessions/'%3B--",
    ] {
        let method = if path.contains("sessions") {
            Method::DELETE
        } else {
            Method::GET
        };
        let res = app
            .req(method, path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    }
}

async fn injection_strings_in_filters_change_nothing(app: TestApp) {
    let admin = app.admin_token().await;
    let res = app
        .req(Method::POST, "/api/v1/merchants")
        .bearer_auth(&admin)
        .json(&json!({ "name": "Honest Shop", "country": "DE", "mcc": "5411" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let merchants_before = app.count("merchants").await;
    let users_before = app.count("users").await;

    for text in INJECTIONS {
        // Free-text filters: an empty result.
        for (path, field) in [
            ("/api/v1/merchants", "q"),
            ("/api/v1/audit/records", "actor"),
            ("/api/v1/audit/records", "action"),
            ("/api/v1/audit/records", "target"),
        ] {
            let res = app
                .req(Method::GET, path)
                .query(&[(field, text)])
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}?{field}={text}");
            let body: serde_json::Value = res.json().await.unwrap();
            let list = body
                .get("merchants")
                .or_else(|| body.get("records"))
                .unwrap();
            assert_eq!(
                list.as_array().unwrap().len(),
                0,
                "{path}?{field}={text} matched rows"
            );
        }
        // Typed filters: a clear 400.
        for (path, field) in [
            ("/api/v1/merchants", "status"),
            ("/api/v1/merchants", "limit"),
            ("/api/v1/audit/records", "since"),
            ("/api/v1/audit/records", "before_seq"),
        ] {
            let res = app
                .req(Method::GET, path)
                .query(&[(field, text)])
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            expect_error(res, StatusCode::BAD_REQUEST, "invalid_parameter").await;
        }
        for path in ["/api/v1/merchants", "/api/v1/devices", "/api/v1/users"] {
            let res = app
                .req(Method::GET, path)
                .query(&[("cursor", text)])
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        }
        // Login with an injection as username.
        assert_eq!(
            app.login(text, text).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Unknown query parameters and out-of-range values are refused.
    let res = app
        .req(Method::GET, "/api/v1/merchants?order=name;DROP")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    let res = app
        .req(Method::GET, "/api/v1/audit/records?limit=100000")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    assert_eq!(app.count("merchants").await, merchants_before);
    assert_eq!(app.count("users").await, users_before);
    let page: serde_json::Value = app
        .req(Method::GET, "/api/v1/merchants?q=honest")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["merchants"].as_array().unwrap().len(), 1);
}

async fn weak_or_duplicate_users_are_refused(app: TestApp) {
    let admin = app.admin_token().await;
    let create = |body: serde_json::Value| {
        app.req(Method::POST, "/api/v1/users")
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let res = create(json!({ "username": "bob", "role": "auditor", "password": "short" }))
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = create(
        json!({ "username": "Bob Smith", "role": "auditor", "password": "long-enough-password" }),
    )
    .await
    .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res =
        create(json!({ "username": "bob", "role": "root", "password": "long-enough-password" }))
            .await
            .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
    let res =
        create(json!({ "username": "bob", "role": "auditor", "password": "long-enough-password" }))
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res =
        create(json!({ "username": "bob", "role": "admin", "password": "long-enough-password" }))
            .await
            .unwrap();
    expect_error(res, StatusCode::CONFLICT, "username_taken").await;
}

crate::on_both_backends!(
    malformed_bodies_are_refused,
    unknown_and_malformed_ids,
    injection_strings_in_filters_change_nothing,
    weak_or_duplicate_users_are_refused,
);
