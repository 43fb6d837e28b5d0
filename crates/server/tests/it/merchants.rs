//! Merchants: create, read, update, list with filters and cursor pagination.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestApp, expect_error};

async fn create(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.req(Method::POST, "/api/v1/merchants")
        .bearer_auth(token)
        .json(&json!({ "name": name, "country": "DE", "mcc": "5411" }))
        .send()
        .await
        .unwrap()
}

async fn merchant_crud_and_pagination(app: TestApp) {
    let admin = app.admin_token().await;
    let operator = app.token_for_role(&admin, "operator").await;
    let res = create(&app, &operator, "Bäckerei Schmidt").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let merchant: Value = res.json().await.unwrap();
    let id = merchant["id"].as_str().unwrap().to_owned();
    assert_eq!(merchant["status"], "active");

    expect_error(
        create(&app, &operator, "Bäckerei Schmidt").await,
        StatusCode::CONFLICT,
        "merchant_name_taken",
    )
    .await;

    let res = app
        .req(Method::POST, "/api/v1/merchants")
        .bearer_auth(&operator)
        .json(&json!({ "name": " ", "country": "de", "mcc": "54" }))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["details"].as_array().unwrap().len(), 3, "{body}");

    let res = app
        .req(Method::PATCH, &format!("/api/v1/merchants/{id}"))
        .bearer_auth(&operator)
        .json(&json!({ "status": "suspended", "mcc": "5812" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["status"], "suspended");
    assert_eq!(updated["mcc"], "5812");
    assert_eq!(updated["name"], "Bäckerei Schmidt");

    let res = app
        .req(Method::GET, &format!("/api/v1/merchants/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "suspended");

    // Closed is final.
    let patch = |body: Value| {
        app.req(Method::PATCH, &format!("/api/v1/merchants/{id}"))
            .bearer_auth(&operator)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(json!({ "status": "closed" })).await.unwrap().status(),
        StatusCode::OK
    );
    expect_error(
        patch(json!({ "status": "active" })).await.unwrap(),
        StatusCode::CONFLICT,
        "merchant_closed",
    )
    .await;

    // Pagination over 7 more, 3 per page, oldest first, no duplicates.
    for n in 0..7 {
        assert_eq!(
            create(&app, &operator, &format!("Shop {n}")).await.status(),
            StatusCode::CREATED
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/merchants?limit=3&q=shop".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = app
            .req(Method::GET, &path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for merchant in page["merchants"].as_array().unwrap() {
            seen.push(merchant["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..7).map(|n| format!("Shop {n}")).collect::<Vec<_>>()
    );

    // Status filter.
    let page: Value = app
        .req(Method::GET, "/api/v1/merchants?status=closed")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["merchants"].as_array().unwrap().len(), 1);

    // LIKE wildcards are matched literally.
    let page: Value = app
        .req(Method::GET, "/api/v1/merchants?q=%25")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["merchants"].as_array().unwrap().len(), 0);
}

crate::on_both_backends!(merchant_crud_and_pagination);
