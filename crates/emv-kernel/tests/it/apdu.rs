use emv_kernel::Tag;
use emv_kernel::apdu::{
    ApduError, Command, CryptogramType, Occurrence, Response, StatusKind, StatusWord,
    encode_response,
};
use hex_literal::hex;

/// SELECT PPSE as published in the Stack Overflow question 29541035 trace and in EMV Contactless
/// Book B 3.3: `00 A4 04 00 0E "2PAY.SYS.DDF01" 00`.
#[test]
fn select_ppse_matches_published_trace() {
    let expected = hex!("00A404000E325041592E5359532E444446303100");
    assert_eq!(Command::select_ppse().to_bytes(), expected);
    assert_eq!(
        Command::select_by_name(b"2PAY.SYS.DDF01", Occurrence::First)
            .unwrap()
            .to_bytes(),
        expected
    );
    assert_eq!(Command::parse(&expected).unwrap(), Command::select_ppse());
}

/// Command codings of EMV Book 3 section 6.5.
#[test]
fn command_codings() {
    assert_eq!(
        Command::select_by_name(&hex!("A0000000031010"), Occurrence::Next)
            .unwrap()
            .to_bytes(),
        hex!("00A4040207A000000003101000")
    );
    // GPO without PDOL: command template 83 00 (Book 3 6.5.8.3).
    assert_eq!(
        Command::get_processing_options(&[]).unwrap().to_bytes(),
        hex!("80A8000002830000")
    );
    assert_eq!(
        Command::get_processing_options(&hex!("36004000"))
            .unwrap()
            .to_bytes(),
        hex!("80A8000006830436004000 00")
    );
    // READ RECORD SFI 1 record 1: P2 = 0C (Book 3 Table 22).
    assert_eq!(
        Command::read_record(1, 1).unwrap().to_bytes(),
        hex!("00B2010C00")
    );
    assert_eq!(
        Command::read_record(2, 3).unwrap().to_bytes(),
        hex!("00B2031400")
    );
    assert_eq!(
        Command::generate_ac(CryptogramType::Arqc, true, &hex!("0102"))
            .unwrap()
            .to_bytes(),
        hex!("80AE9000020102 00")
    );
    assert_eq!(
        Command::generate_ac(CryptogramType::Tc, false, &[0xAA])
            .unwrap()
            .to_bytes(),
        hex!("80AE400001AA00")
    );
    assert_eq!(
        Command::internal_authenticate(&hex!("01020304"))
            .unwrap()
            .to_bytes(),
        hex!("008800000401020304 00")
    );
    assert_eq!(
        Command::get_data(Tag::ApplicationTransactionCounter).to_bytes(),
        hex!("80CA9F3600")
    );
    assert_eq!(Command::get_challenge().to_bytes(), hex!("0084000000"));
    assert_eq!(Command::get_response(0x1C).to_bytes(), hex!("00C000001C"));
}

#[test]
fn invalid_commands_are_refused() {
    assert_eq!(
        Command::read_record(0, 1),
        Err(ApduError::InvalidRecordReference { sfi: 0, record: 1 })
    );
    assert_eq!(
        Command::read_record(31, 1),
        Err(ApduError::InvalidRecordReference { sfi: 31, record: 1 })
    );
    assert_eq!(
        Command::read_record(1, 0),
        Err(ApduError::InvalidRecordReference { sfi: 1, record: 0 })
    );
    assert_eq!(
        Command::internal_authenticate(&[0; 256]),
        Err(ApduError::DataTooLong(256))
    );
}

/// ISO/IEC 7816-4 5.1 cases 1 to 4.
#[test]
fn command_parsing_cases() {
    let case1 = Command::parse(&hex!("00A40400")).unwrap();
    assert_eq!((case1.data.len(), case1.le), (0, None));
    let case2 = Command::parse(&hex!("00B2010C00")).unwrap();
    assert_eq!((case2.data.len(), case2.le), (0, Some(0)));
    let case3 = Command::parse(&hex!("8088000002AABB")).unwrap();
    assert_eq!((case3.data, case3.le), (hex!("AABB").to_vec(), None));
    let case4 = Command::parse(&hex!("8088000002AABB00")).unwrap();
    assert_eq!((case4.data, case4.le), (hex!("AABB").to_vec(), Some(0)));
    assert_eq!(
        Command::parse(&hex!("00A4")),
        Err(ApduError::CommandTooShort(2))
    );
    assert_eq!(
        Command::parse(&hex!("8088000005AABB")),
        Err(ApduError::CommandBodyMismatch)
    );
    assert_eq!(
        Command::parse(&hex!("8088000002AABBCCDD")),
        Err(ApduError::CommandBodyMismatch)
    );
}

#[test]
fn responses_split_data_and_status() {
    let response = Response::parse(&hex!("6F00 9000")).unwrap();
    assert_eq!(response.data, hex!("6F00"));
    assert!(response.sw.is_success());
    let blocked = Response::parse(&hex!("6A81")).unwrap();
    assert!(blocked.data.is_empty());
    assert_eq!(blocked.sw.kind(), StatusKind::FunctionNotSupported);
    assert_eq!(
        Response::parse(&hex!("90")),
        Err(ApduError::ResponseTooShort(1))
    );
    assert_eq!(
        encode_response(&hex!("0102"), StatusWord::SUCCESS),
        hex!("01029000")
    );
    assert_eq!(StatusWord(0x6C10).kind(), StatusKind::WrongLe(0x10));
    assert_eq!(format!("{}", StatusWord(0x6A82)), "6A82");
}
