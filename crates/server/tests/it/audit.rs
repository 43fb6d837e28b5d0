//! The audit chain: every action recorded, filters, concurrent appends never fork it, and
//! direct database tampering (edit, delete) is named by the verification endpoint.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Backend, TestApp};

async fn verify(app: &TestApp, token: &str) -> Value {
    let res = app
        .req(Method::GET, "/api/v1/audit/verify")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn create_merchants(app: &TestApp, token: &str, n: usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = app
            .req(Method::POST, "/api/v1/merchants")
            .bearer_auth(token)
            .json(&json!({ "name": format!("Concurrent {i} {}", uuid::Uuid::new_v4()), "country": "NL", "mcc": "5999" }));
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
}

/// Lets the test edit and delete audit rows, as someone with direct database access could.
async fn drop_append_only_guard(app: &TestApp, pool: &sqlx::AnyPool) {
    match app.backend {
        Backend::Sqlite => {
            sqlx::query("DROP TRIGGER audit_log_no_update")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER audit_log_no_delete")
                .execute(pool)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn actions_are_recorded_and_filterable(app: TestApp) {
    let admin = app.admin_token().await;
    let auditor = app.token_for_role(&admin, "auditor").await;
    create_merchants(&app, &admin, 2).await;
    let _ = app.login("admin", "wrong-password-x").await;

    let page: Value = app
        .req(Method::GET, "/api/v1/audit/records?limit=100")
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = page["records"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for expected in [
        "user.created",
        "auth.login",
        "merchant.created",
        "auth.login_failed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // Newest first, gap-free, each carrying its request id where there was a request.
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    let merchant = records
        .iter()
        .find(|r| r["action"] == "merchant.created")
        .unwrap();
    assert!(merchant["request_id"].is_string());
    assert!(merchant["actor"].as_str().unwrap().starts_with("user:"));

    // Filters and paging.
    let page: Value = app
        .req(
            Method::GET,
            "/api/v1/audit/records?action=merchant.created&limit=1",
        )
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    let next = page["next_before_seq"].as_i64().unwrap();
    let page: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/audit/records?action=merchant.created&before_seq={next}"),
        )
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    let page: Value = app
        .req(
            Method::GET,
            "/api/v1/audit/records?since=2999-01-01T00:00:00Z",
        )
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 0);
}

async fn concurrent_appends_keep_one_chain(app: TestApp) {
    let admin = app.admin_token().await;
    create_merchants(&app, &admin, 24).await;
    let verdict = verify(&app, &admin).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(
        verdict["records_checked"].as_i64().unwrap(),
        app.count("audit_log").await
    );
}

async fn the_database_refuses_updates_and_deletes(app: TestApp) {
    let _ = app.admin_token().await;
    let pool = app.db().await;
    assert!(
        sqlx::query("UPDATE audit_log SET actor = 'x' WHERE seq = 1")
            .execute(&pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM audit_log WHERE seq = 1")
            .execute(&pool)
            .await
            .is_err()
    );
}

async fn an_edited_record_is_named(app: TestApp) {
    let admin = app.admin_token().await;
    create_merchants(&app, &admin, 3).await;
    assert_eq!(verify(&app, &admin).await["valid"], true);
    let pool = app.db().await;
    drop_append_only_guard(&app, &pool).await;
    // Someone rewrites who did record 3.
    let n = sqlx::query("UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1);
    let verdict = verify(&app, &admin).await;
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["first_bad"]["seq"], 3, "{verdict}");
    assert_eq!(verdict["first_bad"]["problem"], "content_mismatch");
}

async fn a_recomputed_record_breaks_the_next_link(app: TestApp) {
    let admin = app.admin_token().await;
    create_merchants(&app, &admin, 3).await;
    let pool = app.db().await;
    drop_append_only_guard(&app, &pool).await;
    // A forger also replaces record 2's hash: record 3 no longer points at it.
    sqlx::query("UPDATE audit_log SET hash = $1 WHERE seq = 2")
        .bind("ab".repeat(32))
        .execute(&pool)
        .await
        .unwrap();
    let verdict = verify(&app, &admin).await;
    assert_eq!(verdict["first_bad"]["seq"], 2, "{verdict}");
}

async fn a_deleted_record_is_named(app: TestApp) {
    let admin = app.admin_token().await;
    create_merchants(&app, &admin, 4).await;
    let pool = app.db().await;
    drop_append_only_guard(&app, &pool).await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 4")
        .execute(&pool)
        .await
        .unwrap();
    let verdict = verify(&app, &admin).await;
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["first_bad"]["seq"], 4, "{verdict}");
    assert_eq!(verdict["first_bad"]["problem"], "missing_record");
}

crate::on_both_backends!(
    actions_are_recorded_and_filterable,
    concurrent_appends_keep_one_chain,
    the_database_refuses_updates_and_deletes,
    an_edited_record_is_named,
    a_recomputed_record_breaks_the_next_link,
    a_deleted_record_is_named,
);

/// Two instances append concurrently to one PostgreSQL database: still one chain.
#[tokio::test]
async fn two_instances_append_to_one_chain() {
    let Some(first) = TestApp::spawn(Backend::Postgres, &[]).await else {
        return;
    };
    let second = first.spawn_sharing(&[]);
    let token = first.admin_token().await;
    let (a, b) = tokio::join!(
        create_merchants(&first, &token, 20),
        create_merchants(&second, &token, 20)
    );
    let ((), ()) = (a, b);
    let verdict = verify(&second, &token).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(
        verdict["records_checked"].as_i64().unwrap(),
        first.count("audit_log").await
    );
}
