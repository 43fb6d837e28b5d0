//! Liveness, readiness, metrics, OpenAPI, docs, request ids, security headers.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{Backend, TestApp};

async fn health_readiness_and_metrics(app: TestApp) {
    let res = app.req(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = app.req(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let (db, stores) = match app.backend {
        Backend::Sqlite => ("sqlite", "memory"),
        Backend::Postgres => ("postgres", "redis"),
    };
    assert_eq!(body["database"]["kind"], db);
    assert_eq!(body["stores"]["kind"], stores);
    assert_eq!(body["status"], "ready");

    // Some traffic, then the counters show it by route template.
    let _ = app
        .req(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap();
    let res = app.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/auth/me\""), "{text}");
}

async fn openapi_is_31_and_everything_is_under_api_v1(app: TestApp) {
    let res = app
        .req(Method::GET, "/api/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "only {} paths", paths.len());
    for path in paths.keys() {
        assert!(
            path.starts_with("/api/v1/")
                || ["/healthz", "/readyz", "/metrics"].contains(&path.as_str()),
            "{path} is outside /api/v1"
        );
    }
    let res = app.req(Method::GET, "/api/docs/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("swagger"));
}

async fn request_ids_and_security_headers(app: TestApp) {
    let res = app.req(Method::GET, "/healthz").send().await.unwrap();
    let id = res
        .headers()
        .get("x-request-id")
        .expect("request id")
        .to_str()
        .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(
        res.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    // A caller's id is propagated.
    let res = app
        .req(Method::GET, "/healthz")
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "trace-me-123");
    // No CORS by default.
    let res = app
        .req(Method::OPTIONS, "/api/v1/auth/login")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // Unknown routes get the JSON error shape.
    let res = app.req(Method::GET, "/api/v1/nope").send().await.unwrap();
    crate::expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

crate::on_both_backends!(
    health_readiness_and_metrics,
    openapi_is_31_and_everything_is_under_api_v1,
    request_ids_and_security_headers,
);

/// `--tls-self-signed` serves TLS 1.3 with a generated certificate.
#[tokio::test]
async fn self_signed_tls_serves_https() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, &[("TLS_SELF_SIGNED", "true")]).await else {
        return;
    };
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("strict-transport-security").is_some());
    // TLS 1.2 only: refused.
    let old = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(
        old.get(format!("{}/healthz", app.base))
            .send()
            .await
            .is_err()
    );
}
