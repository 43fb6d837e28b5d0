use emv_kernel::entry_point::{
    self, AidConfig, EntryPointError, Kernel, build_candidates, parse_adf_fci, parse_ppse,
    preprocess,
};
use emv_kernel::tlv::Tag;
use hex_literal::hex;

/// SELECT PPSE response of a Maestro card (Stack Overflow question 29541035, see `tlv.rs`): one
/// entry, ADF Name A0000000043060C123456789, priority 3, Kernel Identifier 02.
const MAESTRO_PPSE_FCI: [u8; 46] = hex!(
    "6F2C840E325041592E5359532E4444463031A51ABF0C1761154F0CA0000000043060C123456789870103"
    "9F2A0102"
);

#[test]
fn published_ppse_directory() {
    let entries = parse_ppse(&MAESTRO_PPSE_FCI).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].adf_name, hex!("A0000000043060C123456789"));
    assert_eq!(entries[0].priority, Some(3));
    assert_eq!(entries[0].kernel_identifier.as_deref(), Some(&[0x02][..]));
    assert_eq!(entry_point::requested_kernel_id(&entries[0]), Some(2));

    // A reader configured for Maestro A0000000043060 on Kernel 2 (partial match) selects it;
    // one configured for Kernel 3 on that AID does not.
    let maestro = AidConfig::new(&hex!("A0000000043060"), Kernel::C2);
    let pre = [preprocess(&maestro, 1_000)];
    let candidates = build_candidates(&entries, std::slice::from_ref(&maestro), &pre);
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].kernel, Kernel::C2);
    let wrong_kernel = AidConfig::new(&hex!("A0000000043060"), Kernel::C3);
    assert!(build_candidates(&entries, &[wrong_kernel], &pre).is_empty());
    let mut exact_only = maestro.clone();
    exact_only.partial_match = false;
    assert!(build_candidates(&entries, &[exact_only], &pre).is_empty());
}

#[test]
fn candidates_are_ordered_by_priority_and_limits_apply() {
    let ppse = hex!(
        "6F 3C 840E325041592E5359532E4444463031"
        "A5 2A BF0C 27"
        "61 0C 4F07A0000000041010 870102"
        "61 0C 4F07A0000000031010 870101"
        "61 09 4F07A0000000999999"
    );
    let entries = parse_ppse(&ppse).unwrap();
    assert_eq!(entries.len(), 3);
    let mut visa = AidConfig::new(&hex!("A000000003"), Kernel::C3);
    visa.transaction_limit = Some(5_000);
    let mastercard = AidConfig::new(&hex!("A000000004"), Kernel::C2);
    let configs = [visa, mastercard];
    let pre: Vec<_> = configs
        .iter()
        .map(|config| preprocess(config, 1_000))
        .collect();
    let candidates = build_candidates(&entries, &configs, &pre);
    let names: Vec<_> = candidates.iter().map(|c| c.adf_name.clone()).collect();
    assert_eq!(names, [hex!("A0000000031010"), hex!("A0000000041010")]);
    // At the Visa contactless limit only Mastercard remains (Book B 3.1.1).
    let pre: Vec<_> = configs
        .iter()
        .map(|config| preprocess(config, 5_000))
        .collect();
    let candidates = build_candidates(&entries, &configs, &pre);
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].kernel, Kernel::C2);
}

#[test]
fn adf_fci_is_checked() {
    let fci = hex!("6F 1A 8407A0000000031010 A50F 500456495341 9F3806 9F66049F3704");
    let parsed = parse_adf_fci(&fci, &hex!("A0000000031010")).unwrap();
    assert_eq!(parsed.pdol.as_deref(), Some(&hex!("9F66049F3704")[..]));
    assert_eq!(parsed.label.as_deref(), Some(&b"VISA"[..]));
    assert_eq!(
        parse_adf_fci(&fci, &hex!("A0000000041010")),
        Err(EntryPointError::DfNameMismatch)
    );
    assert_eq!(
        parse_adf_fci(&hex!("6F 03 500100"), &hex!("A0000000031010")),
        Err(EntryPointError::Missing(Tag::DfName))
    );
    assert!(matches!(
        parse_ppse(&hex!("6F 05 8403AABBCC")),
        Err(EntryPointError::Missing(Tag::FciProprietaryTemplate))
    ));
}
