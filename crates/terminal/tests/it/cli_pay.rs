//! Payments through the CLI against a real server: approved, declined by the issuer, online PIN
//! right and wrong (`--pin-stdin`), bad input that changes nothing, a suspended device that can
//! no longer pay, and a crash right after the DUKPT counter is persisted.

use serde_json::Value;

use crate::cli_support::{Run, Terminal, active_terminal};
use crate::local_server;

fn pay(terminal: &Terminal, args: &[&str], pin: &str) -> Run {
    let mut all = vec!["pay", "--json"];
    all.extend_from_slice(args);
    if pin.is_empty() {
        terminal.run(&all)
    } else {
        all.push("--pin-stdin");
        terminal.run_with_input(&all, &format!("{pin}\n"))
    }
}

fn next_counter(terminal: &Terminal) -> u64 {
    let status = terminal.run(&["status", "--offline", "--json"]).ok_json();
    status["key_sets"][0]["next_counter"].as_u64().unwrap()
}

fn ksn_counter(payment: &Value) -> u64 {
    // AES DUKPT KSN: 8-byte initial key id, 4-byte counter.
    let ksn = payment["ksn"].as_str().unwrap();
    u64::from_str_radix(&ksn[ksn.len() - 8..], 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_declined_online_pin_and_bad_input() {
    let server = local_server(&[]);
    let (terminal, _admin, device_id) = active_terminal(&server).await;

    let approved = pay(&terminal, &["--amount", "12.00", "--card", "visa-fdda"], "").ok_json();
    assert_eq!(approved["result"], "approved", "{approved}");
    assert_eq!(approved["transaction"]["approved"], true);
    assert_eq!(approved["transaction"]["response_code"], "00");
    assert_eq!(approved["transaction"]["device_id"], device_id.as_str());
    assert_eq!(approved["transaction"]["amount_minor"], 1200);
    assert_eq!(approved["currency"], "EUR");
    assert_eq!(approved["kernel"], "native");
    assert_eq!(approved["online_pin"], false);
    let pan = approved["transaction"]["pan_masked"].as_str().unwrap();
    assert!(pan.contains('*') || pan.contains('X'), "masked PAN: {pan}");
    let first = ksn_counter(&approved);
    assert!(approved["timings"]["total"].as_f64().unwrap() > 0.0);

    // The issuer declines ..51 (insufficient funds): printed, exit code 6.
    let declined = pay(&terminal, &["--amount", "12.51", "--card", "mc-cda"], "");
    assert_eq!(declined.code, 6, "{declined:?}");
    let declined = declined.json();
    assert_eq!(declined["result"], "declined");
    assert_eq!(declined["transaction"]["response_code"], "51");
    assert!(
        ksn_counter(&declined) > first,
        "every sale uses a fresh KSN"
    );

    // Online PIN: the card's PIN approves, another one is declined (55).
    let test_pin = emv_cards::Card::profile("visa-online-pin")
        .unwrap()
        .test_pin();
    let with_pin = pay(
        &terminal,
        &[
            "--amount",
            "20.00",
            "--card",
            "visa-online-pin",
            "--currency",
            "USD",
        ],
        test_pin,
    )
    .ok_json();
    assert_eq!(with_pin["result"], "approved", "{with_pin}");
    assert_eq!(with_pin["online_pin"], true);
    assert_eq!(with_pin["transaction"]["online_pin"], true);
    let wrong = pay(
        &terminal,
        &[
            "--amount",
            "20.00",
            "--card",
            "visa-online-pin",
            "--currency",
            "USD",
        ],
        "9999",
    );
    assert_eq!(wrong.code, 6, "{wrong:?}");
    assert_eq!(wrong.json()["transaction"]["response_code"], "55");
    // No PIN on standard input: PIN entry fails, nothing is sent.
    let before = next_counter(&terminal);
    let no_pin = terminal.run_with_input(
        &[
            "pay",
            "--amount",
            "20.00",
            "--card",
            "visa-online-pin",
            "--pin-stdin",
        ],
        "\n",
    );
    assert_eq!(no_pin.code, 8, "{no_pin:?}");
    assert!(no_pin.stderr.starts_with("error: pin_"), "{no_pin:?}");
    assert!(!no_pin.stderr.contains(test_pin));

    // Bad input: one-line errors, exit code 2, the DUKPT counter untouched.
    let before_bad = next_counter(&terminal);
    for (args, code) in [
        (
            vec!["--amount", "12.00", "--card", "amex-gold"],
            "unknown_card",
        ),
        (
            vec!["--amount", "12.345", "--card", "visa-fdda"],
            "invalid_amount",
        ),
        (
            vec!["--amount", "twelve", "--card", "visa-fdda"],
            "invalid_amount",
        ),
        (
            vec!["--amount", "0", "--card", "visa-fdda"],
            "invalid_amount",
        ),
        (
            vec![
                "--amount",
                "1.00",
                "--currency",
                "XYZ",
                "--card",
                "visa-fdda",
            ],
            "unknown_currency",
        ),
        (
            vec!["--amount", "1.00", "--transcript", "missing.txt"],
            "transcript_invalid",
        ),
        (vec!["--amount", "1.00"], "invalid_arguments"),
    ] {
        let mut all = vec!["pay"];
        all.extend(args);
        terminal.run(&all).expect_error(2, code);
    }
    assert_eq!(next_counter(&terminal), before_bad);
    // PIN entry comes after the keys of the sale: that KSN is spent, never reused.
    assert_eq!(before_bad, before + 1);

    // History: this device's sales, newest first, PANs masked.
    let history = terminal
        .run(&["history", "--json", "--limit", "10"])
        .ok_json();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{history}");
    assert_eq!(items[3]["id"], approved["transaction"]["id"]);
    assert!(items.iter().all(|tx| tx["device_id"] == device_id.as_str()));
    terminal
        .run(&["history", "--limit", "0"])
        .expect_error(2, "invalid_limit");

    // Refunds of the approved 12.00 sale: part, never above what is left, then the rest.
    let sale_id = approved["transaction"]["id"].as_str().unwrap();
    let part = terminal
        .run(&["refund", sale_id, "--amount", "2.00", "--json"])
        .ok_json();
    assert_eq!(part["refunded_minor"], 200, "{part}");
    terminal
        .run(&["refund", sale_id, "--amount", "10.01"])
        .expect_error(4, "refund_exceeds_captured");
    let rest = terminal.run(&["refund", sale_id, "--json"]).ok_json();
    assert_eq!(rest["refunded_minor"], 1200, "{rest}");
    terminal
        .run(&["refund", sale_id, "--amount", "0.01"])
        .expect_error(4, "transaction_not_refundable");
    terminal
        .run(&["refund", "not-a-transaction"])
        .expect_error(2, "invalid_transaction_id");
    terminal
        .run(&["refund", "00000000-0000-4000-8000-000000000000"])
        .expect_error(4, "transaction_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_counter_never_reuses_a_ksn() {
    let server = local_server(&[]);
    let (mut terminal, _admin, _) = active_terminal(&server).await;
    let first = pay(&terminal, &["--amount", "5.00", "--card", "mc-cda"], "").ok_json();
    let first_counter = ksn_counter(&first);

    terminal.env.push((
        "SOFTPOS_TERMINAL_CRASH_AFTER".to_owned(),
        "counter".to_owned(),
    ));
    let crashed = pay(&terminal, &["--amount", "6.00", "--card", "mc-cda"], "");
    assert_ne!(crashed.code, 0, "{crashed:?}");
    assert!(crashed.stdout.is_empty());
    assert!(
        crashed.stderr.contains("aborting after persisting KSN"),
        "{crashed:?}"
    );
    // The counter the crashed sale took is persisted: the store moved on.
    assert_eq!(next_counter(&terminal), first_counter + 2);
    terminal.env.clear();

    let after = pay(&terminal, &["--amount", "6.00", "--card", "mc-cda"], "").ok_json();
    assert_eq!(after["result"], "approved", "{after}");
    assert_eq!(
        ksn_counter(&after),
        first_counter + 2,
        "a fresh KSN, never the crashed one"
    );

    // An unknown crash point is refused before anything happens.
    terminal.env.push((
        "SOFTPOS_TERMINAL_CRASH_AFTER".to_owned(),
        "token".to_owned(),
    ));
    pay(&terminal, &["--amount", "6.00", "--card", "mc-cda"], "")
        .expect_error(2, "invalid_crash_point");
}
