//! The terminal's life through the CLI against a real server: init, register, approval by the
//! operator (admin API), keys, health, status; a hooked device is suspended and cannot pay.

use crate::cli_support::{Terminal, finish};
use crate::{admin_client, local_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_register_approve_keys_health_and_a_hooked_device_is_suspended() {
    let server = local_server(&[]);
    let admin = admin_client(&server.base);
    admin.ensure_payment_keys().await.unwrap();
    let merchant = admin.create_merchant("CLI lifecycle shop").await.unwrap();
    let terminal = Terminal::new();

    // Before init: a clear store error, exit code 7.
    terminal.run(&["status"]).expect_error(7, "store_not_found");
    let init = terminal
        .run(&["init", "--server", &server.base, "--json"])
        .ok_json();
    assert_eq!(init["key_fingerprint"].as_str().unwrap().len(), 64);
    terminal.run(&["init"]).expect_error(7, "store_exists");
    // The store opens only with its key.
    let mut wrong = Terminal::new();
    wrong.dir = tempfile::tempdir().unwrap();
    std::fs::copy(terminal.store(), wrong.store()).unwrap();
    wrong
        .run(&["status", "--offline"])
        .expect_error(7, "store_wrong_key");

    // Bad input changes nothing: still unregistered afterwards.
    terminal
        .run(&["register", "--merchant", "not-a-uuid"])
        .expect_error(2, "invalid_merchant_id");
    terminal
        .run(&["register", "--no-wait"])
        .expect_error(2, "missing_merchant");
    let status = terminal.run(&["status", "--json"]).ok_json();
    assert_eq!(status["device_id"], serde_json::Value::Null);
    assert_eq!(status["server_error"], "not_registered");

    let registered = terminal
        .run(&["register", "--merchant", &merchant, "--no-wait", "--json"])
        .ok_json();
    assert_eq!(registered["state"], "REGISTERED");
    assert_eq!(registered["newly_registered"], true);
    let device_id = registered["device_id"].as_str().unwrap().to_owned();
    assert_eq!(admin.device_state(&device_id).await.unwrap(), "REGISTERED");
    // Not approved yet: no keys for it.
    terminal
        .run(&["keys", "inject"])
        .expect_error(5, "device_not_approved");

    // `register` again waits for the approval, which the operator gives meanwhile.
    let waiting = terminal.spawn(
        &[
            "register",
            "--poll-interval",
            "0.2",
            "--wait-timeout",
            "60",
            "--json",
        ],
        "",
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    admin.approve_device(&device_id, "checked").await.unwrap();
    let waited = finish(waiting).ok_json();
    assert_eq!(waited["state"], "APPROVED");
    assert_eq!(waited["newly_registered"], false);
    assert_eq!(waited["device_id"], device_id.as_str());

    let keys = terminal.run(&["keys", "inject", "--json"]).ok_json();
    assert_eq!(keys["result"], "injected");
    assert_eq!(keys["device_state"], "APPROVED");
    assert_eq!(keys["pending"], "no_health_check");
    let sets = keys["key_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["status"], "active");
    assert_eq!(sets[0]["scheme"], "aes128");
    assert!(!keys.to_string().contains("originator"), "no key material");

    let health = terminal
        .run(&["health", "--no-root-check", "--json"])
        .ok_json();
    assert_eq!(health["verdict"]["passed"], true, "{health}");
    assert_eq!(health["activated"], true);
    assert_eq!(health["device_state"], "ACTIVE");
    assert_eq!(admin.device_state(&device_id).await.unwrap(), "ACTIVE");
    let status = terminal.run(&["status", "--json"]).ok_json();
    assert_eq!(status["server_state"], "ACTIVE");
    assert_eq!(status["device_id"], device_id.as_str());
    let shown = terminal.run(&["keys", "show", "--json"]).ok_json();
    assert_eq!(shown["key_sets"][0]["next_counter"], 1);
    let not_due = terminal
        .run(&["keys", "rotate", "--if-due", "--json"])
        .ok_json();
    assert_eq!(not_due["result"], "not_due");
    // A build without PC/SC support: a clear card/reader error (`pcsc` has its own tests).
    #[cfg(not(feature = "pcsc"))]
    {
        terminal.run(&["readers"]).expect_error(8, "pcsc_not_built");
        terminal
            .run(&["pay", "--amount", "1.00", "--reader", "ACS ACR122U"])
            .expect_error(8, "pcsc_not_built");
    }

    // An unknown signal is bad input and sends nothing.
    terminal
        .run(&["health", "--inject", "jailbroken"])
        .expect_error(2, "unknown_signal");
    assert_eq!(admin.device_state(&device_id).await.unwrap(), "ACTIVE");

    // Frida on a rooted phone: the report fails, the policy suspends the device.
    let hooked = terminal.run(&[
        "health",
        "--no-root-check",
        "--inject",
        "hooked",
        "--inject",
        "rooted",
        "--json",
    ]);
    assert_eq!(hooked.code, 5, "{hooked:?}");
    let hooked = hooked.json();
    assert_eq!(hooked["verdict"]["passed"], false);
    assert_eq!(hooked["device_state"], "SUSPENDED");
    assert_eq!(hooked["report"]["hook_frameworks"][0], "frida");
    assert_eq!(admin.device_state(&device_id).await.unwrap(), "SUSPENDED");
    let kinds = admin.threat_kinds(&device_id).await.unwrap();
    assert!(kinds.iter().any(|k| k == "hook_framework"), "{kinds:?}");

    // A suspended device gets no token: the payment is refused before the card is read.
    terminal
        .run(&["pay", "--amount", "10.00", "--card", "visa-fdda"])
        .expect_error(5, "device_not_active");
    let status = terminal.run(&["status", "--json"]).ok_json();
    assert_eq!(status["server_state"], "SUSPENDED");
}
