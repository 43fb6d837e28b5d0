//! A small fleet run through the CLI against a real server, approved with the admin password
//! and with a scoped API key: every device set up, the paced payments' results as the
//! scenarios expect, the compromised device SUSPENDED (checked again through the admin API);
//! bad options refused before anything is sent.

use crate::cli_support::Terminal;
use crate::{admin_client, local_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_devices_one_compromised() {
    let server = local_server(&[]);
    five_devices_one_compromised_with(
        &server,
        "SOFTPOS_ADMIN_PASSWORD",
        terminal::fleet::server::LOCAL_ADMIN_PASSWORD.to_owned(),
    )
    .await;
}

/// The way: devices approved through an admin API key (`devices:approve`, read back
/// with `devices:read`); key custody stays with people, so the payment keys exist already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_devices_approved_through_an_api_key() {
    let server = local_server(&[]);
    let admin = admin_client(&server.base);
    admin.ensure_payment_keys().await.unwrap();
    let key = admin
        .create_api_key(
            "fleet",
            &["merchants:write", "devices:read", "devices:approve"],
        )
        .await
        .unwrap();
    five_devices_one_compromised_with(&server, "SOFTPOS_API_KEY", key).await;
}

async fn five_devices_one_compromised_with(
    server: &terminal::fleet::server::LocalServer,
    credential_variable: &str,
    credential: String,
) {
    let mut runner = Terminal::new();
    runner
        .env
        .push((credential_variable.to_owned(), credential));
    let run = runner.run(&[
        "fleet",
        "--server",
        &server.base,
        "--devices",
        "5",
        "--compromised-share",
        "0.2",
        "--rate",
        "8",
        "--duration",
        "3",
        "--json",
    ]);
    let summary = run.ok_json();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["options"]["devices"], 5);
    assert_eq!(summary["options"]["compromised"], 1);
    assert_eq!(summary["setup"]["ready"], 5);
    assert_eq!(summary["setup"]["errors"], serde_json::json!({}));
    let payments = &summary["payments"];
    assert_eq!(payments["offered"], 24, "8/s for 3 s: {payments}");
    let completed = payments["completed"].as_u64().unwrap();
    assert_eq!(completed + payments["dropped_busy"].as_u64().unwrap(), 24);
    // How many find a free device depends on the machine's speed; what completes must be right.
    assert!(completed >= 1, "{payments}");
    assert_eq!(payments["unexpected"], serde_json::json!({}));
    assert_eq!(payments["errors"], serde_json::json!({}));
    let declined: u64 = payments["declined"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(payments["approved"].as_u64().unwrap() + declined, completed);
    let count = |value: &serde_json::Value| value.as_u64().unwrap_or(0);
    let by_scenario = &payments["by_scenario"];
    assert_eq!(
        count(&payments["declined"]["51"]),
        count(&by_scenario["insufficient-funds"])
    );
    assert_eq!(
        count(&payments["declined"]["55"]),
        count(&by_scenario["wrong-pin"])
    );
    for step in ["token", "card", "authorization", "total"] {
        let latency = &summary["latency_ms"][step];
        assert!(latency["count"].as_u64().unwrap() >= 1, "{step}: {summary}");
        assert!(latency["p50_ms"].as_f64().unwrap() <= latency["p99_ms"].as_f64().unwrap());
    }
    assert_eq!(
        count(&summary["latency_ms"]["pin"]["count"]),
        count(&by_scenario["visa-online-pin"]) + count(&by_scenario["wrong-pin"])
    );

    let compromised = &summary["compromised"];
    assert_eq!(compromised["suspended"], 1, "{compromised}");
    assert_eq!(compromised["payment_refused"], 1);
    assert!(compromised["threats"]["hook_framework"].as_u64().unwrap() >= 1);
    let admin = admin_client(&server.base);
    let id = compromised["device_ids"][0].as_str().unwrap();
    assert_eq!(admin.device_state(id).await.unwrap(), "SUSPENDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fleet_options_are_refused_before_anything_is_sent() {
    let runner = Terminal::new();
    let args = |extra: &[&str]| {
        let mut all = vec!["fleet", "--admin-password", "x", "--duration", "1"];
        all.extend_from_slice(extra);
        all.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let owned = args(extra);
        let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
        runner.run(&borrowed)
    };
    run(&["--server", "http://192.0.2.10:8080"]).expect_error(2, "fleet_not_loopback");
    run(&["--server", "http://127.0.0.1:9", "--devices", "0"])
        .expect_error(2, "invalid_fleet_options");
    run(&["--server", "http://127.0.0.1:9", "--rate", "0"])
        .expect_error(2, "invalid_fleet_options");
    run(&["--server", "http://127.0.0.1:9", "--cards", "amex"]).expect_error(2, "unknown_scenario");
    // Port 9 (discard) has nobody listening on loopback: unreachable, exit 3.
    run(&["--server", "http://127.0.0.1:9"]).expect_error(3, "unreachable");
    let no_credentials = runner.run(&["fleet", "--server", "http://127.0.0.1:9"]);
    no_credentials.expect_error(2, "missing_admin_credentials");

    let server = local_server(&[]);
    run(&["--server", &server.base]).expect_error(4, "invalid_credentials");
}
