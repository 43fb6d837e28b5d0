//! Login, refresh rotation and family revocation, logout, sessions, password change,
//! throttling.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ADMIN_PASSWORD, Backend, TestApp, expect_error, token_of};

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.req(Method::POST, "/api/v1/auth/refresh")
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.req(Method::GET, "/api/v1/auth/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn login_and_wrong_credentials(app: TestApp) {
    let body = app.login_ok("admin", ADMIN_PASSWORD).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["role"], "admin");
    assert!(body["user"].get("password_hash").is_none());
    let token = token_of(&body);
    assert_eq!(me(&app, &token).await, StatusCode::OK);

    let wrong = app.login("admin", "not-the-password").await;
    let wrong = expect_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = app.login("nobody", "not-the-password").await;
    let unknown = expect_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        wrong["message"], unknown["message"],
        "no username enumeration"
    );

    // Garbage tokens.
    assert_eq!(me(&app, "not-a-jwt").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&app, &format!("{token}x")).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let first = app.login_ok("admin", ADMIN_PASSWORD).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();

    // A refresh token is never an access token, and an access token is no refresh token.
    assert_eq!(me(&app, &r1).await, StatusCode::UNAUTHORIZED);
    let res = refresh(&app, &token_of(&first)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;

    let res = refresh(&app, &r1).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second: Value = res.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    assert_eq!(second["session_id"], first["session_id"]);
    let access2 = token_of(&second);
    assert_eq!(me(&app, &access2).await, StatusCode::OK);

    // Replaying the spent r1: refused, and the whole family (r2, access tokens) dies.
    let res = refresh(&app, &r1).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let res = refresh(&app, &r2).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    assert_eq!(me(&app, &access2).await, StatusCode::UNAUTHORIZED);

    // Another session of the same user is unaffected.
    let other = app.login_ok("admin", ADMIN_PASSWORD).await;
    assert_eq!(me(&app, &token_of(&other)).await, StatusCode::OK);

    // The reuse is in the audit log.
    let token = token_of(&other);
    let res = app
        .req(
            Method::GET,
            "/api/v1/audit/records?action=auth.refresh_reuse_detected",
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
}

async fn concurrent_refresh_with_one_token_lets_at_most_one_through(app: TestApp) {
    let first = app.login_ok("admin", ADMIN_PASSWORD).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/auth/refresh", app.base);
        let token = r1.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert!(
        ok <= 1,
        "{ok} concurrent refreshes succeeded with one token"
    );
}

async fn browser_cookie_flow(app: TestApp) {
    let res = app
        .req(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD, "use_cookie": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/api/v1/auth"), "{cookie}");
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "browser flow leaks the token in the body"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();

    let res = app
        .req(Method::POST, "/api/v1/auth/refresh")
        .header("cookie", &pair)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("set-cookie").is_some());
    // The old cookie is spent.
    let res = app
        .req(Method::POST, "/api/v1/auth/refresh")
        .header("cookie", &pair)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn logout_sessions_and_password_change(app: TestApp) {
    let admin = app.admin_token().await;
    let password = app.create_user(&admin, "olga", "operator").await;
    let laptop = app.login_ok("olga", &password).await;
    let phone = app.login_ok("olga", &password).await;
    let laptop_token = token_of(&laptop);
    let phone_token = token_of(&phone);

    // List own sessions; the current one is marked.
    let res = app
        .req(Method::GET, "/api/v1/auth/sessions")
        .bearer_auth(&laptop_token)
        .send()
        .await
        .unwrap();
    let sessions: Vec<Value> = res.json().await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    // Revoke the phone from the laptop; the phone's token dies at once.
    let phone_session = phone["session_id"].as_str().unwrap();
    let res = app
        .req(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{phone_session}"),
        )
        .bearer_auth(&laptop_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &phone_token).await, StatusCode::UNAUTHORIZED);

    // Someone else's session is "not found", not revocable.
    let admin_session = app.login_ok("admin", ADMIN_PASSWORD).await;
    let res = app
        .req(
            Method::DELETE,
            &format!(
                "/api/v1/auth/sessions/{}",
                admin_session["session_id"].as_str().unwrap()
            ),
        )
        .bearer_auth(&laptop_token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(me(&app, &token_of(&admin_session)).await, StatusCode::OK);

    // Password change: wrong current password, weak new password, then success.
    let tablet = app.login_ok("olga", &password).await;
    let change = |current: &str, new: &str| {
        app.req(Method::POST, "/api/v1/auth/password")
            .bearer_auth(&laptop_token)
            .json(&json!({ "current_password": current, "new_password": new }))
    };
    let res = change("wrong-current-pass", "a-brand-new-password")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = change(&password, "short").send().await.unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = change(&password, "a-brand-new-password")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Other sessions are revoked, the current one survives.
    assert_eq!(me(&app, &token_of(&tablet)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &laptop_token).await, StatusCode::OK);
    assert_eq!(
        app.login("olga", &password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_ok("olga", "a-brand-new-password").await;

    // Logout ends the session.
    let res = app
        .req(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&laptop_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &laptop_token).await, StatusCode::UNAUTHORIZED);
    let res = refresh(&app, laptop["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// The user list pages through every user exactly once, oldest first.
async fn users_list_pages_with_a_cursor(app: TestApp) {
    let admin = app.admin_token().await;
    let mut created = Vec::new();
    for role in [
        "operator",
        "auditor",
        "security_officer",
        "operator",
        "auditor",
    ] {
        let username = format!("{}-{}", role.replace('_', "-"), created.len());
        app.create_user(&admin, &username, role).await;
        created.push(username);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = app
            .req(Method::GET, "/api/v1/users")
            .query(&[("limit", "2")])
            .bearer_auth(&admin);
        if let Some(cursor) = &cursor {
            req = req.query(&[("cursor", cursor)]);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        let users = page["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        seen.extend(
            users
                .iter()
                .map(|user| user["username"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    // The first-run admin, then the five in creation order.
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(seen[0], "admin");
    let mut expected = vec!["admin".to_owned()];
    expected.extend(created);
    assert_eq!(seen, expected);

    for bad in ["0", "201", "-1"] {
        let res = app
            .req(Method::GET, "/api/v1/users")
            .query(&[("limit", bad)])
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

crate::on_both_backends!(
    users_list_pages_with_a_cursor,
    login_and_wrong_credentials,
    refresh_rotates_and_reuse_revokes_the_family,
    concurrent_refresh_with_one_token_lets_at_most_one_through,
    browser_cookie_flow,
    logout_sessions_and_password_change,
);

const THROTTLE_ENV: &[(&str, &str)] = &[
    ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3"),
    ("LOGIN_MAX_FAILURES_PER_ADDR", "6"),
    ("LOGIN_THROTTLE_WINDOW_SECS", "120"),
];

async fn check_throttling(app: TestApp) {
    for _ in 0..3 {
        let res = app.login("admin", "wrong-password-1").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The account is throttled now, even with the right password.
    let res = app.login("admin", ADMIN_PASSWORD).await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;

    // Per address: failures on other accounts add up to the address limit.
    for n in 0..3 {
        let res = app.login(&format!("ghost{n}"), "wrong-password-1").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app.login("ghost-next", "wrong-password-1").await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
}

#[tokio::test]
async fn login_throttling_sqlite() {
    if let Some(app) = TestApp::spawn(Backend::Sqlite, THROTTLE_ENV).await {
        check_throttling(app).await;
    }
}

#[tokio::test]
async fn login_throttling_postgres_redis() {
    if let Some(app) = TestApp::spawn(Backend::Postgres, THROTTLE_ENV).await {
        check_throttling(app).await;
    }
}

/// Two instances on one PostgreSQL + Redis: failures on one throttle logins on the other,
/// and a token from one is accepted by the other.
#[tokio::test]
async fn throttling_and_tokens_are_shared_across_instances() {
    let Some(first) = TestApp::spawn(Backend::Postgres, THROTTLE_ENV).await else {
        return;
    };
    let second = first.spawn_sharing(THROTTLE_ENV);
    let token = first.admin_token().await;
    assert_eq!(me(&second, &token).await, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            first.login("admin", "wrong-password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = second.login("admin", ADMIN_PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
}

/// The per-account limit alone: with a second (per-address) limit in play, a burst can be
/// refused by either counter in any interleaving, so fewer than the account limit may pass,
/// which is safe but not exact.
const CONCURRENT_GUESS_ENV: &[(&str, &str)] = &[
    ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3"),
    ("LOGIN_MAX_FAILURES_PER_ADDR", "100"),
    ("LOGIN_THROTTLE_WINDOW_SECS", "120"),
];

/// Twelve concurrent wrong guesses: exactly the limit reach the password check, the rest
/// get 429 (attempts are counted before checking, never check-then-set).
async fn check_concurrent_guesses(app: TestApp) {
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/auth/login", app.base);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({ "username": "admin", "password": "wrong-password-1" }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, throttled), (3, 9), "{statuses:?}");
}

#[tokio::test]
async fn concurrent_guesses_cannot_exceed_the_limit_sqlite() {
    if let Some(app) = TestApp::spawn(Backend::Sqlite, CONCURRENT_GUESS_ENV).await {
        check_concurrent_guesses(app).await;
    }
}

#[tokio::test]
async fn concurrent_guesses_cannot_exceed_the_limit_postgres_redis() {
    if let Some(app) = TestApp::spawn(Backend::Postgres, CONCURRENT_GUESS_ENV).await {
        check_concurrent_guesses(app).await;
    }
}
