//! The terminal against a real PC/SC stack (feature `pcsc`): pcscd, vpcd and a virtual card
//! served by `softpos-terminal virtual-reader` (see [`crate::pcsc_stack`]). `readers` lists the
//! vpcd reader, `pay --reader` is approved by a real server with the card read through PC/SC,
//! and a wrong reader, no card, a card pulled away and a stopped pcscd are clear errors.

use std::time::Duration;

use serde_json::Value;

use crate::cli_support::{Terminal, active_terminal};
use crate::local_server;
use crate::pcsc_stack::{PcscStack, finish_within};

/// `softpos-terminal virtual-reader` ends within this once pcscd or the test lets it go.
const BRIDGE_END: Duration = Duration::from_secs(20);

fn masked_like(pan_masked: &str, card: &str) -> bool {
    let pan = emv_cards::Card::profile(card).unwrap().pan().to_owned();
    pan_masked.starts_with(&pan[..6])
        && pan_masked.ends_with(&pan[pan.len() - 4..])
        && !pan_masked.contains(&pan[6..pan.len() - 4])
}

#[test]
fn readers_lists_the_vpcd_reader_and_a_wrong_reader_or_no_card_is_refused() {
    let Some(mut stack) = PcscStack::start() else {
        return;
    };
    let mut terminal = Terminal::new();
    terminal.env.push(stack.client_env());

    let listed = terminal.run(&["readers", "--json"]).ok_json();
    let readers: Vec<&str> = listed["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert!(readers.contains(&PcscStack::reader(0).as_str()), "{listed}");
    assert!(readers.contains(&PcscStack::reader(1).as_str()), "{listed}");

    // A reader nobody has: bad input, naming the readers there are; nothing else was opened.
    let wrong = terminal.run(&["pay", "--amount", "1.00", "--reader", "ACS ACR122U"]);
    wrong.expect_error(2, "reader_not_found");
    assert!(wrong.stderr.contains(&PcscStack::reader(0)), "{wrong:?}");
    assert!(!terminal.store().exists(), "the store was never touched");

    // A tap timeout belongs to a reader.
    terminal
        .run(&[
            "pay",
            "--amount",
            "1.00",
            "--card",
            "visa-fdda",
            "--tap-timeout",
            "5",
        ])
        .expect_error(2, "invalid_arguments");

    // The reader is there but no card is presented in time.
    terminal
        .run(&[
            "pay",
            "--amount",
            "1.00",
            "--reader",
            &PcscStack::reader(0),
            "--tap-timeout",
            "1",
        ])
        .expect_error(10, "card_not_presented");

    // pcscd gone: no PC/SC service.
    stack.stop();
    terminal
        .run(&["readers"])
        .expect_error(8, "pcsc_unavailable");
    terminal
        .run(&["pay", "--amount", "1.00", "--reader", "SoftPOS"])
        .expect_error(8, "pcsc_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_read_through_pcsc_is_approved_and_a_card_pulled_away_is_a_clear_error() {
    let Some(mut stack) = PcscStack::start() else {
        return;
    };
    let server = local_server(&[]);
    let (mut terminal, _admin, device_id) = active_terminal(&server).await;
    terminal.env.push(stack.client_env());
    let counter = |terminal: &Terminal| {
        terminal.run(&["status", "--offline", "--json"]).ok_json()["key_sets"][0]["next_counter"]
            .as_u64()
            .unwrap()
    };
    let pay = |reader: &str, amount: &str, pin: &str| {
        let mut args = vec![
            "pay",
            "--json",
            "--amount",
            amount,
            "--reader",
            reader,
            "--tap-timeout",
            "20",
        ];
        if !pin.is_empty() {
            args.push("--pin-stdin");
        }
        terminal.run_with_input(&args, &format!("{pin}\n"))
    };

    // The card leaves the field after two commands (SELECT PPSE, SELECT AID): the kernel's third
    // command finds no card. A card error; no DUKPT counter used, nothing sent.
    let counter_before = counter(&terminal);
    let pulled = stack.insert(0, "visa-fdda", &["--remove-after", "2"]);
    pay(&PcscStack::reader(0), "3.00", "").expect_error(8, "card_removed");
    let bridge: Value = finish_within(pulled, BRIDGE_END).ok_json();
    assert_eq!(bridge["ending"], "removed", "{bridge}");
    assert_eq!(bridge["commands"], 2, "{bridge}");
    assert_eq!(counter(&terminal), counter_before);
    let history = terminal.run(&["history", "--json"]).ok_json();
    assert_eq!(history["items"].as_array().unwrap().len(), 0, "{history}");

    // A card that stays: approved by the server, the card data read through pcscd.
    let card = stack.insert(0, "visa-fdda", &[]);
    let approved = pay(&PcscStack::reader(0), "12.00", "").ok_json();
    assert_eq!(approved["result"], "approved", "{approved}");
    assert_eq!(approved["transaction"]["response_code"], "00");
    assert_eq!(approved["transaction"]["amount_minor"], 1200);
    assert_eq!(approved["transaction"]["device_id"], device_id.as_str());
    let pan = approved["transaction"]["pan_masked"].as_str().unwrap();
    assert!(masked_like(pan, "visa-fdda"), "{pan}");

    // The other slot holds a card that asks for online PIN: the PIN is checked by the issuer.
    let pin_card = stack.insert(1, "visa-online-pin", &[]);
    let test_pin = emv_cards::Card::profile("visa-online-pin")
        .unwrap()
        .test_pin();
    let with_pin = pay(&PcscStack::reader(1), "20.00", test_pin).ok_json();
    assert_eq!(with_pin["result"], "approved", "{with_pin}");
    assert_eq!(with_pin["online_pin"], true);
    assert!(masked_like(
        with_pin["transaction"]["pan_masked"].as_str().unwrap(),
        "visa-online-pin"
    ));

    // Stopping pcscd closes vpcd's connections: each card says how many commands it answered.
    stack.stop();
    for (bridge, card) in [(card, "visa-fdda"), (pin_card, "visa-online-pin")] {
        let ended: Value = finish_within(bridge, BRIDGE_END).ok_json();
        assert_eq!(ended["ending"], "reader_closed", "{ended}");
        assert_eq!(ended["card"], card);
        assert!(ended["commands"].as_u64().unwrap() >= 4, "{ended}");
    }
    let history = terminal.run(&["history", "--json"]).ok_json();
    assert_eq!(history["items"].as_array().unwrap().len(), 2, "{history}");
}
