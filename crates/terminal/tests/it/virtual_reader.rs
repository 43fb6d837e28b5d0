//! `softpos-terminal virtual-reader` against a scripted vpcd (a TCP listener in the test playing
//! pcscd's driver): the framing, the ATR, card answers, the end of a session, and bad input.
//! The PC/SC tests (`pcsc`) run it against the real vpcd.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cli_support::{Run, finish};

const SELECT_PPSE: &[u8] = b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00";

/// Starts `softpos-terminal virtual-reader ARGS`.
pub(crate) fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_softpos-terminal"))
        .arg("virtual-reader")
        .args(args)
        .env("SOFTPOS_TERMINAL_PROGRESS", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("softpos-terminal runs")
}

fn run(args: &[&str]) -> Run {
    finish(start(args))
}

/// vpcd's side: waits for the card to connect.
fn vpcd() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (stream, _) = listener.accept().expect("the card connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

fn send(stream: &mut TcpStream, message: &[u8]) {
    let mut frame = u16::try_from(message.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(message);
    stream.write_all(&frame).unwrap();
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).unwrap();
    message
}

#[test]
fn a_vpcd_session_gets_the_atr_and_the_cards_answers_until_vpcd_closes() {
    let (listener, addr) = vpcd();
    let child = start(&["--card", "mc-cda", "--vpcd", &addr, "--json"]);
    let mut stream = accept(&listener);
    send(&mut stream, &[0x04]);
    assert_eq!(receive(&mut stream), [0x3B, 0x80, 0x80, 0x01, 0x01]);
    send(&mut stream, &[0x01]);
    send(&mut stream, SELECT_PPSE);
    let mut reference = emv_cards::Card::profile("mc-cda").unwrap();
    assert_eq!(receive(&mut stream), reference.transmit(SELECT_PPSE));
    send(&mut stream, &[0x02]);
    send(&mut stream, &[0x00]);
    send(&mut stream, &[0x04]);
    assert_eq!(
        receive(&mut stream).len(),
        5,
        "presence polls while powered off"
    );
    drop(stream);
    let ended = finish(child).ok_json();
    assert_eq!(ended["ending"], "reader_closed", "{ended}");
    assert_eq!(ended["commands"], 1);
    assert_eq!(ended["card"], "mc-cda");
    assert_eq!(ended["atr"], "3B80800101");
    assert_eq!(ended["vpcd"], addr.as_str());
}

#[test]
fn a_type_b_card_and_a_card_that_leaves_the_field() {
    let (listener, addr) = vpcd();
    let child = start(&[
        "--card",
        "visa-fdda",
        "--vpcd",
        &addr,
        "--type",
        "b",
        "--remove-after",
        "1",
    ]);
    let mut stream = accept(&listener);
    send(&mut stream, &[0x04]);
    let atr = receive(&mut stream);
    assert_eq!(atr[..4], [0x3B, 0x88, 0x80, 0x01]);
    send(&mut stream, &[0x01]);
    send(&mut stream, SELECT_PPSE);
    assert!(receive(&mut stream).len() > 2);
    // Gone after one command: the connection closes with nothing more said (a reset when the
    // command was still unread).
    send(&mut stream, SELECT_PPSE);
    let mut rest = [0u8; 16];
    match stream.read(&mut rest) {
        Ok(n) => assert_eq!(n, 0, "an answer after leaving the field"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    let ended = finish(child);
    assert_eq!(ended.code, 0, "{ended:?}");
    assert_eq!(
        ended.stdout.trim(),
        "visa-fdda left the field after 1 commands"
    );
}

#[test]
fn bad_input_and_a_broken_vpcd_are_typed_errors() {
    run(&["--card", "nope", "--vpcd", "127.0.0.1:9"]).expect_error(2, "unknown_card");
    run(&["--card", "visa-fdda", "--type", "c"]).expect_error(2, "invalid_arguments");

    // Nobody listens there.
    let (listener, addr) = vpcd();
    drop(listener);
    run(&[
        "--card",
        "visa-fdda",
        "--vpcd",
        &addr,
        "--connect-timeout",
        "0",
    ])
    .expect_error(8, "vpcd_unreachable");

    // vpcd has no control byte 07.
    let (listener, addr) = vpcd();
    let child = start(&["--card", "visa-fdda", "--vpcd", &addr]);
    let mut stream = accept(&listener);
    send(&mut stream, &[0x07]);
    finish(child).expect_error(8, "vpcd_protocol");
}
