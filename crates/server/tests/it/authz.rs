//! The authorization matrix, generated from the server's own OpenAPI document: every
//! operation × (anonymous, each role, API keys of each scope) → expected status class.
//!
//! An operation's security requirement lists the roles (`bearer`) and the key scope
//! (`api_key`) it admits. The test holds the server to exactly that, and an operation
//! without a requirement must be on the short public list below, so a new endpoint cannot
//! slip through unprotected.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::TestApp;

/// Operations anyone may call.
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    // Onboarding: the attestation evidence over a single-use challenge is the credential.
    ("post", "/api/v1/devices/challenge"),
    ("post", "/api/v1/devices/register"),
    // The web demo reads the current stable kernel (manifest, signature and .wasm) anonymously.
    ("get", "/api/v1/public/kernel"),
    ("get", "/api/v1/public/kernel/wasm"),
    // Public keys that verify Transaction Tokens.
    ("get", "/api/v1/.well-known/jwks.json"),
];

const ROLES: &[&str] = &["admin", "security_officer", "operator", "auditor"];
const SCOPES: &[&str] = &[
    "merchants:read",
    "merchants:write",
    "audit:read",
    "transactions:read",
    "transactions:refund",
    "devices:read",
    "devices:approve",
];

#[derive(Debug, Default)]
struct Requirement {
    roles: Vec<String>,
    scopes: Vec<String>,
    device: bool,
}

fn requirement(operation: &Value) -> Option<Requirement> {
    let security = operation.get("security")?.as_array()?;
    let mut requirement = Requirement::default();
    for alternative in security {
        for (scheme, scopes) in alternative.as_object()? {
            let scopes = scopes
                .as_array()?
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned));
            match scheme.as_str() {
                "bearer" => requirement.roles.extend(scopes),
                "api_key" => requirement.scopes.extend(scopes),
                "device_signature" => requirement.device = true,
                other => panic!("unknown security scheme {other}"),
            }
        }
    }
    Some(requirement)
}

fn concrete(path: &str) -> String {
    // Every path parameter is an id; a random one exercises auth without touching data.
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

async fn call(app: &TestApp, method: &str, path: &str, auth: &Auth) -> StatusCode {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let path = concrete(path);
    let has_body = matches!(method, Method::POST | Method::PATCH | Method::PUT);
    if let Auth::Device(device) = auth {
        let body: &[u8] = if has_body { b"{}" } else { b"" };
        return app
            .signed(device, method, &path, body)
            .send()
            .await
            .unwrap()
            .status();
    }
    let mut req = app.req(method, &path);
    if has_body {
        req = req.json(&json!({}));
    }
    req = match auth {
        Auth::Anonymous | Auth::Device(_) => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::ApiKey(key) => req.header("x-api-key", key),
    };
    req.send().await.unwrap().status()
}

#[derive(Debug)]
enum Auth {
    Anonymous,
    Bearer(String),
    ApiKey(String),
    Device(crate::TestDevice),
}

fn allowed(status: StatusCode) -> bool {
    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
}

async fn authorization_matrix(app: TestApp) {
    let doc: Value = app
        .req(Method::GET, "/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = app.admin_token().await;
    let mut role_users = BTreeMap::new();
    for role in ROLES {
        let username = format!("matrix-{}", role.replace('_', "-"));
        let password = app.create_user(&admin, &username, role).await;
        role_users.insert(*role, (username, password));
    }
    let mut role_tokens = BTreeMap::new();
    for (role, (username, password)) in &role_users {
        role_tokens.insert(
            *role,
            crate::token_of(&app.login_ok(username, password).await),
        );
    }
    let mut keys = BTreeMap::new();
    for scope in SCOPES {
        keys.insert(*scope, app.api_key(&admin, &[scope]).await);
    }

    let merchant = app.merchant(&admin).await;
    let device = app.device(&merchant).await;

    let mut cells = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(requirement) = requirement(operation) else {
                assert!(
                    PUBLIC.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} declares no security and is not on the public list"
                );
                continue;
            };
            assert!(
                !requirement.roles.is_empty() || requirement.device,
                "{method} {path} admits nobody"
            );
            // Principals of a kind the endpoint does not take at all are unauthenticated
            // there (401); known principals without the right role or scope are refused (403).
            let refused = if requirement.roles.is_empty() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };

            let status = call(&app, method, path, &Auth::Anonymous).await;
            cells += 1;
            if status != StatusCode::UNAUTHORIZED {
                failures.push(format!("{method} {path} anonymous -> {status}"));
            }
            let status = call(&app, method, path, &Auth::Bearer("garbage".to_owned())).await;
            cells += 1;
            if status != StatusCode::UNAUTHORIZED {
                failures.push(format!("{method} {path} bad token -> {status}"));
            }
            for role in ROLES {
                let expected = requirement.roles.iter().any(|r| r == role);
                // Logging out ends the session: use a throwaway one for it.
                let token = if path.ends_with("/logout") {
                    let (username, password) = &role_users[role];
                    crate::token_of(&app.login_ok(username, password).await)
                } else {
                    role_tokens[role].clone()
                };
                let status = call(&app, method, path, &Auth::Bearer(token)).await;
                cells += 1;
                let ok = if expected {
                    allowed(status)
                } else {
                    status == refused
                };
                if !ok {
                    failures.push(format!(
                        "{method} {path} as {role} -> {status} (allowed: {expected})"
                    ));
                }
            }
            for scope in SCOPES {
                let expected = requirement.scopes.iter().any(|s| s == scope);
                let status = call(&app, method, path, &Auth::ApiKey(keys[scope].clone())).await;
                cells += 1;
                let ok = if expected {
                    allowed(status)
                } else {
                    status == refused
                };
                if !ok {
                    failures.push(format!(
                        "{method} {path} with key {scope} -> {status} (allowed: {expected})"
                    ));
                }
            }
            let status = call(&app, method, path, &Auth::Device(device.clone())).await;
            cells += 1;
            let ok = if requirement.device {
                allowed(status)
            } else {
                status == StatusCode::UNAUTHORIZED
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} signed by a device -> {status} (allowed: {})",
                    requirement.device
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix violations:\n{}",
        failures.join("\n")
    );
    assert!(cells >= 250, "only {cells} matrix cells checked");
    eprintln!("authorization matrix: {cells} cells checked");
}

async fn revoked_api_key_and_unknown_key_are_refused(app: TestApp) {
    let admin = app.admin_token().await;
    let key = app.api_key(&admin, &["merchants:read"]).await;
    let list = |key: String| {
        app.req(Method::GET, "/api/v1/merchants")
            .header("x-api-key", key)
            .send()
    };
    assert_eq!(list(key.clone()).await.unwrap().status(), StatusCode::OK);
    // Same prefix, wrong secret.
    let forged = format!("{}AAAA", &key[..key.len() - 4]);
    assert_eq!(
        list(forged).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        list("sbk_nope".to_owned()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

crate::on_both_backends!(
    authorization_matrix,
    revoked_api_key_and_unknown_key_are_refused
);
