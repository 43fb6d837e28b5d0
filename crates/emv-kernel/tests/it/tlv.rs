use emv_kernel::Tag;
use emv_kernel::tlv::{
    self, TlvBuilder, TlvError, TlvIter, find, find_nested, find_path, parse_all, parse_single,
};
use hex_literal::hex;
use proptest::prelude::*;

/// SELECT PPSE response of a Maestro card, published in the Stack Overflow question "Reading
/// PayPass Maestro card: unknown tag 9F2A" (question 29541035, 2015), status word removed.
const MAESTRO_PPSE_FCI: [u8; 46] = hex!(
    "6F2C840E325041592E5359532E4444463031A51ABF0C1761154F0CA0000000043060C123456789870103"
    "9F2A0102"
);

#[test]
fn published_ppse_response_parses_into_its_templates() {
    let fci = parse_single(&MAESTRO_PPSE_FCI).expect("well-formed FCI");
    assert_eq!(fci.tag, Tag::FciTemplate);
    let df_name = find(fci.value, Tag::DfName).unwrap().unwrap();
    assert_eq!(df_name.value, b"2PAY.SYS.DDF01");
    let entry = find_path(
        &MAESTRO_PPSE_FCI,
        &[
            Tag::FciTemplate,
            Tag::FciProprietaryTemplate,
            Tag::FciIssuerDiscretionaryData,
            Tag::ApplicationTemplate,
        ],
    )
    .unwrap()
    .unwrap();
    let children: Vec<_> = entry.children().unwrap().map(Result::unwrap).collect();
    let tags: Vec<Tag> = children.iter().map(|child| child.tag).collect();
    assert_eq!(
        tags,
        [
            Tag::AdfName,
            Tag::ApplicationPriorityIndicator,
            Tag::KernelIdentifier
        ]
    );
    assert_eq!(children[0].value, hex!("A0000000043060C123456789"));
    assert_eq!(children[1].value, [0x03]);
    assert_eq!(children[2].value, [0x02]);
    // The nested search finds the same kernel identifier from the top.
    let kernel = find_nested(&MAESTRO_PPSE_FCI, Tag::KernelIdentifier)
        .unwrap()
        .unwrap();
    assert_eq!(kernel.value, [0x02]);
}

/// The tag examples of the Stack Overflow answer "Why BER-TLV DF9A tag is recognized as invalid"
/// (question 71989541), which applies EMV Book 3 Annex B1: in `DF9A03001736` the second tag byte
/// has b8 set, so the tag is `DF9A03` with length `00`, and `17 36` then declares 0x36 bytes that
/// are missing; `DF5603001736` is tag `DF56` with the 3-byte value `001736`.
#[test]
fn published_multi_byte_tag_examples() {
    let mut objects = TlvIter::new(&hex!("DF9A03001736"));
    let first = objects.next().unwrap().unwrap();
    assert_eq!(first.tag, Tag::from_raw(0xDF9A03));
    assert!(first.value.is_empty());
    assert_eq!(
        objects.next(),
        Some(Err(TlvError::TruncatedValue {
            offset: 6,
            declared: 0x36,
            available: 0
        }))
    );
    assert_eq!(objects.next(), None);

    let objects = parse_all(&hex!("DF5603001736")).unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].tag, Tag::from_raw(0xDF56));
    assert_eq!(objects[0].value, hex!("001736"));
}

/// Book 3 Annex B: "Before, between, or after TLV-coded data objects, '00' bytes without any
/// meaning may occur".
#[test]
fn zero_padding_is_skipped() {
    let objects = parse_all(&hex!("00 00 5A 02 1234 00 9F36 02 0001 00 00")).unwrap();
    let tags: Vec<Tag> = objects.iter().map(|object| object.tag).collect();
    assert_eq!(
        tags,
        [Tag::ApplicationPan, Tag::ApplicationTransactionCounter]
    );
    assert!(parse_all(&hex!("000000")).unwrap().is_empty());
}

fn check_error(input: &[u8], expected: TlvError) {
    assert_eq!(parse_all(input), Err(expected), "input {input:02X?}");
}

#[test]
fn malformed_input_gives_typed_errors() {
    check_error(&hex!("9F"), TlvError::TruncatedTag { offset: 0 });
    check_error(&hex!("5A0112 9F"), TlvError::TruncatedTag { offset: 3 });
    check_error(&hex!("9F8181"), TlvError::TruncatedTag { offset: 0 });
    check_error(&hex!("9F81818101 00"), TlvError::TagTooLong { offset: 0 });
    check_error(&hex!("5A"), TlvError::TruncatedLength { offset: 1 });
    check_error(&hex!("5A81"), TlvError::TruncatedLength { offset: 1 });
    check_error(
        &hex!("70 80 5A0112 0000"),
        TlvError::IndefiniteLength { offset: 1 },
    );
    check_error(
        &hex!("70 84 00000001 00"),
        TlvError::LengthTooLong { offset: 1 },
    );
    check_error(
        &hex!("5A 05 1234"),
        TlvError::TruncatedValue {
            offset: 2,
            declared: 5,
            available: 2,
        },
    );
    check_error(
        &hex!("70 82 0100 00"),
        TlvError::TruncatedValue {
            offset: 4,
            declared: 256,
            available: 1,
        },
    );
}

#[test]
fn errors_inside_templates_surface_in_nested_search() {
    // The inner 5A claims 9 bytes inside a 4-byte template.
    let input = hex!("70 04 5A 09 1234");
    assert!(find(&input, Tag::ApplicationPan).unwrap().is_none());
    assert!(matches!(
        find_nested(&input, Tag::ApplicationPan),
        Err(TlvError::TruncatedValue { .. })
    ));
}

#[test]
fn nesting_is_bounded() {
    // 20 nested `70` templates around nothing: depth exceeds MAX_DEPTH.
    let mut data: Vec<u8> = Vec::new();
    for _ in 0..20 {
        let mut outer = Vec::new();
        tlv::encode(Tag::ReadRecordResponseTemplate, &data, &mut outer);
        data = outer;
    }
    assert_eq!(
        find_nested(&data, Tag::ApplicationPan),
        Err(TlvError::TooDeep)
    );
}

#[test]
fn path_through_a_primitive_is_an_error() {
    let input = hex!("5A 02 1234");
    assert_eq!(
        find_path(&input, &[Tag::ApplicationPan, Tag::ApplicationPan]),
        Err(TlvError::NotConstructed {
            tag: Tag::ApplicationPan
        })
    );
}

#[test]
fn builder_writes_minimal_lengths() {
    let long = [0xAB; 200];
    let mut builder = TlvBuilder::new();
    builder.template(Tag::ReadRecordResponseTemplate, |record| {
        record.primitive(Tag::IssuerPublicKeyCertificate, &long);
    });
    let encoded = builder.finish();
    assert_eq!(encoded[..6], hex!("70 81 CB 90 81 C8"));
    let record = parse_single(&encoded).unwrap();
    let cert = find(record.value, Tag::IssuerPublicKeyCertificate)
        .unwrap()
        .unwrap();
    assert_eq!(cert.value, long);
}

/// Book 3 Annex B2 does not require the shortest length form, so `81 02` is read; re-encoding
/// writes the shortest form.
#[test]
fn non_minimal_length_is_read_and_reencoded_minimally() {
    let object = parse_single(&hex!("5A 81 02 1234")).unwrap();
    assert_eq!(object.value, hex!("1234"));
    assert_eq!(object.raw, hex!("5A 81 02 1234"));
    assert_eq!(object.to_vec(), hex!("5A 02 1234"));
}

proptest! {
    /// Arbitrary bytes never make a parser panic, and every object found lies inside the input.
    #[test]
    fn parsers_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        for object in TlvIter::new(&input).flatten() {
            prop_assert!(object.raw.len() <= input.len());
        }
        let _ = find_nested(&input, Tag::ApplicationCryptogram);
        let _ = tlv::for_each_primitive(&input, &mut |_| {});
        let _ = parse_single(&input);
    }

    /// Encoding then parsing gives back the tag and value.
    #[test]
    fn encode_parse_round_trip(
        tag in prop::sample::select(vec![0x5Au32, 0x9F26, 0xDF8129, 0x70, 0xBF0C]),
        value in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let tag = Tag::from_raw(tag);
        let mut encoded = Vec::new();
        tlv::encode(tag, &value, &mut encoded);
        let (object, used) = tlv::Tlv::parse_one(&encoded).unwrap().unwrap();
        prop_assert_eq!(used, encoded.len());
        prop_assert_eq!(object.tag, tag);
        prop_assert_eq!(object.value, &value[..]);
    }
}

#[test]
fn single_object_means_exactly_one() {
    assert!(parse_single(&hex!("77 03 9F3600 0000")).is_ok());
    assert_eq!(
        parse_single(&hex!("77 03 9F3600 5A00")),
        Err(TlvError::TrailingData { offset: 5 })
    );
    assert_eq!(parse_single(&[]), Err(TlvError::TruncatedTag { offset: 0 }));
}
