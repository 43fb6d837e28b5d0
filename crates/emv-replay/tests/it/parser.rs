//! The transcript format: accepted forms and typed errors with the line.

use emv_replay::{ParseErrorKind, Transcript};
use hex_literal::hex;

fn error(text: &str) -> (usize, ParseErrorKind, &'static str) {
    let error = Transcript::parse(text).expect_err("must be refused");
    (error.line, error.kind.clone(), error.code())
}

#[test]
fn accepts_comments_blank_lines_spaces_and_case() {
    let text = "# header\n\n>> 00 a4 04 00 02 3F00 00   # trailing comment\n<< 90 00\n\t\n>>80CA9F1700\n<<9F170103 9000\n";
    let transcript = Transcript::parse(text).unwrap();
    let exchanges = transcript.exchanges();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0].line, 3);
    assert_eq!(exchanges[0].command, hex!("00A40400023F0000"));
    assert_eq!(exchanges[0].response, hex!("9000"));
    assert_eq!(exchanges[1].line, 6);
    assert_eq!(exchanges[1].response, hex!("9F1701039000"));
}

#[test]
fn written_text_parses_back() {
    let text = ">> 00B2011400\n<< 7003570100 9000\n";
    let transcript = Transcript::parse(text).unwrap();
    let written = transcript.to_text(&["source: test", ""]);
    assert!(written.starts_with("# source: test\n#\n>> 00B2011400\n"));
    let reread = Transcript::parse(&written).unwrap();
    assert_eq!(
        reread.exchanges()[0].command,
        transcript.exchanges()[0].command
    );
    assert_eq!(
        reread.exchanges()[0].response,
        transcript.exchanges()[0].response
    );
    assert_eq!(reread.exchanges()[0].line, 3);
}

#[test]
fn bad_input_names_the_line() {
    assert_eq!(
        error("# x\n>> 00A4040G\n<< 9000\n"),
        (2, ParseErrorKind::BadHex('G'), "transcript_bad_hex")
    );
    assert_eq!(
        error(">> 00A40400\n<< 900\n"),
        (2, ParseErrorKind::OddLength(3), "transcript_odd_length")
    );
    assert_eq!(
        error("\n<< 9000\n"),
        (
            2,
            ParseErrorKind::ResponseWithoutCommand,
            "transcript_response_without_command"
        )
    );
    assert_eq!(
        error(">> 00A40400\n<< 9000\nC-APDU: 00B2011400\n"),
        (
            3,
            ParseErrorKind::UnknownPrefix,
            "transcript_unknown_prefix"
        )
    );
    assert_eq!(
        error(">> 00A40400\n>> 00B2011400\n<< 9000\n"),
        (
            1,
            ParseErrorKind::CommandWithoutResponse,
            "transcript_command_without_response"
        )
    );
    assert_eq!(
        error(">> 00A40400\n<< 9000\n>> 00B2011400\n"),
        (
            3,
            ParseErrorKind::CommandWithoutResponse,
            "transcript_command_without_response"
        )
    );
    assert_eq!(
        error(">> 00A4\n<< 9000\n"),
        (
            1,
            ParseErrorKind::CommandTooShort(2),
            "transcript_command_too_short"
        )
    );
    assert_eq!(
        error(">> 00A40400\n<< 90\n"),
        (
            2,
            ParseErrorKind::ResponseTooShort(1),
            "transcript_response_too_short"
        )
    );
    assert_eq!(
        error("# only comments\n\n"),
        (2, ParseErrorKind::Empty, "transcript_empty")
    );
    let shown = Transcript::parse(">> 00A4040Z\n").unwrap_err().to_string();
    assert_eq!(shown, "line 1: invalid hex character 'Z'");
}
