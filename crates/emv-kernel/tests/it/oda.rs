//! Offline data authentication: published examples first, then certificates built here from the
//! fixed test keys of `oda_keys` for every failure the book names.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use emv_kernel::Date;
use emv_kernel::oda::{
    self, CaKeyTable, CaPublicKey, CdaInput, Certificate, FddaInput, OdaError, OdaRecord,
    Revocation, sha1,
};
use hex_literal::hex;

use crate::oda_keys::*;

// ---------------------------------------------------------------------------------------------
// Published CA test keys: Visa "VSDC CA Public Test Keys", Tables 2-1 to 2-3 (as reproduced in
// merlokk/PCSCEMV EMVkeys.pas). The published hash is SHA-1(RID || index || modulus || exponent).

const VISA_RID: [u8; 5] = hex!("A000000003");
const MASTERCARD_RID: [u8; 5] = hex!("A000000004");

const VSDC_95_MODULUS: [u8; 144] = hex!(
    "BE9E1FA5E9A803852999C4AB432DB28600DCD9DAB76DFAAA47355A0FE37B1508"
    "AC6BF38860D3C6C2E5B12A3CAAF2A7005A7241EBAA7771112C74CF9A0634652F"
    "BCA0E5980C54A64761EA101A114E0F0B5572ADD57D010B7C9C887E104CA4EE12"
    "72DA66D997B9A90B5A6D624AB6C57E73C8F919000EB5F684898EF8C3DBEFB330"
    "C62660BED88EA78E909AFF05F6DA627B"
);
const VSDC_95_HASH: [u8; 20] = hex!("EE1511CEC71020A9B90443B37B1D5F6E703030F6");

const VSDC_92_MODULUS: [u8; 176] = hex!(
    "996AF56F569187D09293C14810450ED8EE3357397B18A2458EFAA92DA3B6DF65"
    "14EC060195318FD43BE9B8F0CC669E3F844057CBDDF8BDA191BB64473BC8DC9A"
    "730DB8F6B4EDE3924186FFD9B8C7735789C23A36BA0B8AF65372EB57EA5D89E7"
    "D14E9C7B6B557460F10885DA16AC923F15AF3758F0F03EBD3C5C2C949CBA306D"
    "B44E6A2C076C5F67E281D7EF56785DC4D75945E491F01918800A9E2DC66F6008"
    "0566CE0DAF8D17EAD46AD8E30A247C9F"
);
const VSDC_92_HASH: [u8; 20] = hex!("429C954A3859CEF91295F663C963E582ED6EB253");

#[test]
fn published_visa_test_ca_keys_match_their_checksums() {
    let key_95 =
        CaPublicKey::with_checksum(VISA_RID, 0x95, &VSDC_95_MODULUS, &[0x03], &VSDC_95_HASH);
    assert!(key_95.is_ok(), "{key_95:?}");
    let key_92 =
        CaPublicKey::with_checksum(VISA_RID, 0x92, &VSDC_92_MODULUS, &[0x03], &VSDC_92_HASH);
    assert!(key_92.is_ok(), "{key_92:?}");
    // One flipped bit in the modulus breaks the checksum.
    let mut tampered = VSDC_92_MODULUS;
    tampered[10] ^= 0x01;
    assert_eq!(
        CaPublicKey::with_checksum(VISA_RID, 0x92, &tampered, &[0x03], &VSDC_92_HASH),
        Err(OdaError::CaKeyChecksum)
    );
}

// ---------------------------------------------------------------------------------------------
// Published SDA example: emv-tools by Dmitry Eremin-Solenikov, `sda_test.c` (also in
// RfidResearchGroup/proxmark3 client/src/emv/test/sda_test.c): Visa CA key index 01 (1024 bits),
// issuer certificate, remainder and exponent, Signed Static Application Data, and the static
// data to be authenticated (record contents followed by the AIP 5C00).

const VSDC_01_MODULUS: [u8; 128] = hex!(
    "C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F"
    "1228DA5C7470C055387100CB935A712C4E2864DF5D64BA93FE7E63E71F25B1E5"
    "F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939"
    "BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75"
);
const VSDC_01_HASH: [u8; 20] = hex!("D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC");
const SDA_ISSUER_CERT: [u8; 128] = hex!(
    "3C5FEAD4DD7BCA44F93E90C44F76EDE54A3288ECDC78469FCB1225C03B2C04F2"
    "C2F412281A0822DF14649230989FB1494070DAF8C9534A78819601486 16ACE58"
    "1788120D3506ACE4CEE564FB27EE53341C22F0B45B31873D05DE545EFE33BCD2"
    "9B2185D035A806AD08C6976F3505A19999930CA8A03EFA321C486061F7DCEC9F"
);
const SDA_ISSUER_REMAINDER: [u8; 36] =
    hex!("1EBCA30F00CE5962A8C6E130544B82891B236C65DE29317F364735DEE63F6598975835D5");
const SDA_SSAD: [u8; 128] = hex!(
    "99A558B62B674AA5E7D2A57E5EF6A6F2258E5DA052D05B54E5C115FF1CECF94A"
    "A2DF8F39A01D71C619EB819DA52EF381E84979586AEA7855FFBEF40AA3A71CD3"
    "B04CFDF270AEC8158A2797F24FD613B748134661135CD290E45B04A8E0CCC711"
    "AE042F159E73C89C2A7E65A4C2FD1D6106024AA27130B0ECEC0238F91659DE96"
);
const SDA_RECORD_CONTENTS: [u8; 49] = hex!(
    "5F2403081231 5A084276550013234599 5F340101 9F0702FF00 9F0D05D040ACA800"
    "9F0E050010000000 9F0F05D068BCF800"
);
const SDA_AIP: [u8; 2] = hex!("5C00");
const SDA_PAN: [u8; 8] = hex!("4276550013234599");

/// A date inside every certificate's validity in the SDA example (issuer certificate: 12/09).
fn sda_today() -> Date {
    Date::new(2009, 6, 15).unwrap()
}

#[test]
fn published_sda_example_verifies() {
    let ca = CaPublicKey::with_checksum(VISA_RID, 0x01, &VSDC_01_MODULUS, &[0x03], &VSDC_01_HASH)
        .unwrap();
    let issuer = oda::recover_issuer_key(
        &ca,
        Certificate {
            certificate: &SDA_ISSUER_CERT,
            remainder: &SDA_ISSUER_REMAINDER,
            exponent: &[0x03],
        },
        &SDA_PAN,
        sda_today(),
        &[],
    )
    .unwrap();
    assert_eq!(issuer.key.len(), 128);
    assert_eq!(issuer.issuer_identifier, hex!("427655FF"));
    assert_eq!(issuer.serial, hex!("0042B3"));

    // Static data: the record is a 70 template in SFI 1; 9F4A lists the AIP.
    let mut record = vec![0x70, SDA_RECORD_CONTENTS.len() as u8];
    record.extend_from_slice(&SDA_RECORD_CONTENTS);
    let static_data = oda::static_data_to_authenticate(
        &[OdaRecord {
            sfi: 1,
            data: &record,
        }],
        Some(&[0x82]),
        &SDA_AIP,
    )
    .unwrap();
    assert_eq!(static_data, [&SDA_RECORD_CONTENTS[..], &SDA_AIP].concat());

    let sda = oda::verify_sda(&issuer, &SDA_SSAD, &static_data).unwrap();
    assert_eq!(sda.data_authentication_code, hex!("3132"));

    // Changing one byte of the static data breaks the signature.
    let mut altered = static_data.clone();
    altered[5] ^= 0x01;
    assert_eq!(
        oda::verify_sda(&issuer, &SDA_SSAD, &altered),
        Err(OdaError::HashMismatch)
    );
    // The issuer certificate expired at the end of 12/2009.
    assert_eq!(
        oda::recover_issuer_key(
            &ca,
            Certificate {
                certificate: &SDA_ISSUER_CERT,
                remainder: &SDA_ISSUER_REMAINDER,
                exponent: &[0x03],
            },
            &SDA_PAN,
            Date::new(2010, 1, 1).unwrap(),
            &[],
        ),
        Err(OdaError::Expired)
    );
}

// ---------------------------------------------------------------------------------------------
// Published DDA and CDA examples: emv-tools `dda_test.c` and `cda_test.c` (also in proxmark3):
// Mastercard CA key index 05 (1408 bits), one issuer and ICC certificate, static data ending in
// the AIP 3900, a DDA signature over DDOL data 00000000, and a CDA signature over UN 12345779 for
// a GENERATE AC response of 9F27 9F36 9F4B 9F10 with the given CDOL1 data.

const MC_05_MODULUS: [u8; 176] = hex!(
    "B8048ABC30C90D976336543E3FD7091C8FE4800DF820ED55E7E94813ED00555B"
    "573FECA3D84AF6131A651D66CFF4284FB13B635EDD0EE40176D8BF04B7FD1C7B"
    "ACF9AC7327DFAA8AA72D10DB3B8E70B2DDD811CB4196525EA386ACC33C0D9D45"
    "75916469C4E4F53E8E1C912CC618CB22DDE7C3568E90022E6BBA770202E4522A"
    "2DD623D180E215BD1D1507FE3DC90CA310D27B3EFCCD8F83DE3052CAD1E48938"
    "C68D095AAC91B5F37E28BB49EC7ED597"
);
const MC_05_HASH: [u8; 20] = hex!("EBFA0D5D06D8CE702DA3EAE890701D45E274C845");
const MC_ISSUER_CERT: [u8; 176] = hex!(
    "1714284F763B8586EE6D319951F7E63FA25076E50DC9D3200BA998D3A052ADBA"
    "9AB69AC6AD6ADD3CE09F0278F4074EC4EE9B1D2268A3E953575E454E50CD860B"
    "F424C51C597712D2AA057089DD8673E51B1E1D7188034892077AC18A6AE23488"
    "BEA9DF3B1A83F2C0800CD7C5CDF2FDE0496F7BC39FB4BF363299BFA637B2EC33"
    "C507E36821EEC2075F0E420D38A1C9F3127261BA316C987674FADB20EA7FEB75"
    "EE455D12146EA6F02E8B01EC2FA7A115"
);
const MC_ISSUER_REMAINDER: [u8; 36] =
    hex!("6E63B7BC70ABDD09341B34C03286BA9BD83BA7936C5B7798FB22C5E53FF240A26DBD6415");
const MC_ICC_CERT: [u8; 176] = hex!(
    "A42FBEB156B98DCB0554DA062ADCA5309A91F04FA2C7BD7102A8D73F16A3CFAD"
    "E8AADF4F3FE2A2125CCDD77C6B9F78B5B4371CE0805725B0F9C027AF147D91E1"
    "FFDB201E9C170CE777053A172AD526DCAFD33895E1A947305C5B167F2E7C6F99"
    "1581A652EE473154760C2ED774214E50DFECDD4CF294C974B89EBCA25B5AB3C0"
    "BEB50DFAF782AFDE1433D90CA2A89D651E75D67EBC7C3E36F5A165EE61326129"
    "39C1ECD399E46074B996D93A88E01E0A"
);
const MC_STATIC_DATA: [u8; 129] = hex!(
    "5F25031405015F24031506305A0852858812543456535F3401018E0C00000000"
    "000000001E031F039F0702FF009F0D05BC50BC00009F0E0500000000009F0F05"
    "BC70BC98009F4A01825F280206438C219F02069F03069F1A0295055F2A029A03"
    "9C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C0839"
    "00"
);
const MC_PAN: [u8; 8] = hex!("5285881254345653");
const DDA_SDAD: [u8; 112] = hex!(
    "3D87F31056102D2512CFDE30900627C1263A76D1DAA821F50831E606C54544C2"
    "58131EAEBE874DCB1A28CF82D3FF91118260BC91113711D3B289FA41BE69C7A7"
    "B5C783E6F8F97FCE13F08B13FA44183E3718CEBF0C41473D2B0FF4DE44B6A02D"
    "75ADB6D4962393FFDF4E69026CDF38FF"
);
const CDA_SDAD: [u8; 112] = hex!(
    "1C009FC48679157DBFF45F65D33FF78D4FCBF0CF5EA4208D107AE95AA38C546D"
    "0E5A18B87403A12BD447A8BBFC1E49CE0B2E251389205703C9BB1A88CC79F1DD"
    "C2F9841EADF07CE07B62511DDC93DF59F28F0E91F92332D29CDEF2BCCB100885"
    "0500EF3E470A4CB18CD91AA5C1A108F3"
);
const CDA_CDOL1_DATA: [u8; 43] = hex!(
    "000000000000 000000000000 0643 0000000000 0643 140925 50 12345779 23 0000"
    "0000000000000000 1E0300"
);
const CDA_IAD: [u8; 18] = hex!("001090400122 0000000000000000000000 FF");

/// Inside the issuer (12/21) and ICC (06/15) certificate validity.
fn mc_today() -> Date {
    Date::new(2015, 1, 15).unwrap()
}

fn mc_icc_key() -> oda::IccPublicKey {
    let ca = CaPublicKey::with_checksum(MASTERCARD_RID, 0x05, &MC_05_MODULUS, &[0x03], &MC_05_HASH)
        .unwrap();
    let issuer = oda::recover_issuer_key(
        &ca,
        Certificate {
            certificate: &MC_ISSUER_CERT,
            remainder: &MC_ISSUER_REMAINDER,
            exponent: &[0x03],
        },
        &MC_PAN,
        mc_today(),
        &[],
    )
    .unwrap();
    assert_eq!(issuer.serial, hex!("006EE2"));
    oda::recover_icc_key(
        &issuer,
        Certificate {
            certificate: &MC_ICC_CERT,
            remainder: &[],
            exponent: &[0x03],
        },
        &MC_PAN,
        &MC_STATIC_DATA,
        mc_today(),
    )
    .unwrap()
}

#[test]
fn published_dda_example_verifies() {
    let icc = mc_icc_key();
    assert_eq!(icc.key.len(), 112);
    assert_eq!(icc.serial, hex!("345653"));
    let dynamic = oda::verify_dda(&icc, &DDA_SDAD, &hex!("00000000")).unwrap();
    assert_eq!(dynamic.icc_dynamic_number, hex!("7A33FB8C9546E1E7"));
    assert_eq!(
        oda::verify_dda(&icc, &DDA_SDAD, &hex!("00000001")),
        Err(OdaError::HashMismatch)
    );
}

fn cda_response_template() -> Vec<u8> {
    let mut template = hex!("9F270140 9F36020010").to_vec();
    emv_kernel::tlv::encode(
        emv_kernel::Tag::SignedDynamicApplicationData,
        &CDA_SDAD,
        &mut template,
    );
    emv_kernel::tlv::encode(
        emv_kernel::Tag::IssuerApplicationData,
        &CDA_IAD,
        &mut template,
    );
    template
}

#[test]
fn published_cda_example_verifies() {
    let icc = mc_icc_key();
    let template = cda_response_template();
    let input = CdaInput {
        unpredictable_number: &hex!("12345779"),
        cid: 0x40,
        pdol_data: &[],
        cdol1_data: &CDA_CDOL1_DATA,
        cdol2_data: None,
        response_template: &template,
    };
    let cda = oda::verify_cda(&icc, &CDA_SDAD, &input).unwrap();
    assert_eq!(cda.icc_dynamic_number, hex!("4CC2FB1FAFB30915"));
    assert_eq!(cda.cid, 0x40);
    assert_eq!(cda.cryptogram, hex!("16AFBA13C52FB173"));

    // The CID returned outside the signature must match the one inside.
    assert_eq!(
        oda::verify_cda(&icc, &CDA_SDAD, &CdaInput { cid: 0x80, ..input }),
        Err(OdaError::CidMismatch)
    );
    // Any change to the transaction data breaks the hash code.
    let mut cdol1 = CDA_CDOL1_DATA;
    cdol1[11] = 0x01;
    assert_eq!(
        oda::verify_cda(
            &icc,
            &CDA_SDAD,
            &CdaInput {
                cdol1_data: &cdol1,
                ..input
            }
        ),
        Err(OdaError::TransactionDataHash)
    );
    // A different unpredictable number breaks the signature itself.
    assert_eq!(
        oda::verify_cda(
            &icc,
            &CDA_SDAD,
            &CdaInput {
                unpredictable_number: &hex!("12345778"),
                ..input
            }
        ),
        Err(OdaError::HashMismatch)
    );
}

// ---------------------------------------------------------------------------------------------
// Certificates built here with the fixed test keys, for the failure cases.

fn sign(message: &[u8], private_exponent: &[u8], modulus: &[u8]) -> Vec<u8> {
    let bits = (modulus.len() * 8).div_ceil(64) as u32 * 64;
    let n = BoxedUint::from_be_slice(modulus, bits).unwrap();
    let params = BoxedMontyParams::new_vartime(Odd::new(n).unwrap());
    let m = BoxedUint::from_be_slice(message, bits).unwrap();
    let d = BoxedUint::from_be_slice(private_exponent, bits).unwrap();
    let s = BoxedMontyForm::new(m, &params)
        .pow(&d)
        .retrieve()
        .to_be_bytes();
    s[s.len() - modulus.len()..].to_vec()
}

/// Wraps `body` (format byte onward, without hash) as 6A || body || hash || BC and signs it;
/// `extra` is hashed after the body (remainder, exponent, static or dynamic data).
fn signed(body: &[u8], extra: &[u8], d: &[u8], n: &[u8]) -> Vec<u8> {
    assert_eq!(body.len() + 22, n.len(), "frame length");
    let mut message = vec![0x6A];
    message.extend_from_slice(body);
    message.extend_from_slice(&sha1(&[body, extra]));
    message.push(0xBC);
    sign(&message, d, n)
}

const TEST_RID: [u8; 5] = hex!("A000000999");
const TEST_PAN: [u8; 8] = hex!("4761739001010010");

fn test_ca() -> CaPublicKey {
    CaPublicKey::new(TEST_RID, 0x01, &CA_MODULUS, &[0x03]).unwrap()
}

/// Table 6 issuer certificate fields, changeable per test.
struct IssuerCertFields {
    format: u8,
    issuer_id: [u8; 4],
    expiry: [u8; 2],
    hash_algorithm: u8,
}

impl Default for IssuerCertFields {
    fn default() -> Self {
        Self {
            format: 0x02,
            issuer_id: hex!("476173FF"),
            expiry: hex!("1230"),
            hash_algorithm: 0x01,
        }
    }
}

/// The issuer certificate and remainder for the test issuer key (NI = 128 > NCA - 36 = 108).
fn issuer_cert(fields: &IssuerCertFields) -> (Vec<u8>, Vec<u8>) {
    let split = CA_MODULUS.len() - 36;
    let mut body = vec![fields.format];
    body.extend_from_slice(&fields.issuer_id);
    body.extend_from_slice(&fields.expiry);
    body.extend_from_slice(&hex!("000123"));
    body.extend_from_slice(&[
        fields.hash_algorithm,
        0x01,
        ISSUER_MODULUS.len() as u8,
        0x01,
    ]);
    body.extend_from_slice(&ISSUER_MODULUS[..split]);
    let remainder = ISSUER_MODULUS[split..].to_vec();
    let extra = [&remainder[..], &[0x03]].concat();
    (
        signed(&body, &extra, &CA_PRIVATE_EXPONENT, &CA_MODULUS),
        remainder,
    )
}

fn today() -> Date {
    Date::new(2026, 11, 26).unwrap()
}

fn recover_test_issuer(cert: &[u8], remainder: &[u8]) -> Result<oda::IssuerPublicKey, OdaError> {
    oda::recover_issuer_key(
        &test_ca(),
        Certificate {
            certificate: cert,
            remainder,
            exponent: &[0x03],
        },
        &TEST_PAN,
        today(),
        &[],
    )
}

#[test]
fn built_issuer_certificate_recovers_with_its_remainder() {
    let (cert, remainder) = issuer_cert(&IssuerCertFields::default());
    let issuer = recover_test_issuer(&cert, &remainder).unwrap();
    assert_eq!(issuer.key.modulus(), ISSUER_MODULUS);
    assert_eq!(issuer.serial, hex!("000123"));
}

#[test]
fn issuer_certificate_failures() {
    let (cert, remainder) = issuer_cert(&IssuerCertFields::default());
    assert_eq!(
        recover_test_issuer(&cert, &remainder[1..]),
        Err(OdaError::HashMismatch),
        "remainder is hashed"
    );
    assert_eq!(
        recover_test_issuer(&cert[1..], &remainder),
        Err(OdaError::SignatureLength)
    );
    let mut tampered = cert.clone();
    tampered[40] ^= 0x01;
    assert!(matches!(
        recover_test_issuer(&tampered, &remainder),
        Err(OdaError::Trailer | OdaError::Header | OdaError::SignatureLength)
    ));
    let (wrong_format, remainder) = issuer_cert(&IssuerCertFields {
        format: 0x04,
        ..Default::default()
    });
    assert_eq!(
        recover_test_issuer(&wrong_format, &remainder),
        Err(OdaError::Format(0x04))
    );
    let (wrong_id, remainder) = issuer_cert(&IssuerCertFields {
        issuer_id: hex!("476174FF"),
        ..Default::default()
    });
    assert_eq!(
        recover_test_issuer(&wrong_id, &remainder),
        Err(OdaError::IssuerIdentifier)
    );
    let (expired, remainder) = issuer_cert(&IssuerCertFields {
        expiry: hex!("1026"),
        ..Default::default()
    });
    assert_eq!(
        recover_test_issuer(&expired, &remainder),
        Err(OdaError::Expired)
    );
    let (bad_date, remainder) = issuer_cert(&IssuerCertFields {
        expiry: hex!("1A30"),
        ..Default::default()
    });
    assert_eq!(
        recover_test_issuer(&bad_date, &remainder),
        Err(OdaError::InvalidDate)
    );
    let (sha256, remainder) = issuer_cert(&IssuerCertFields {
        hash_algorithm: 0x02,
        ..Default::default()
    });
    assert_eq!(
        recover_test_issuer(&sha256, &remainder),
        Err(OdaError::HashAlgorithm(0x02))
    );
    // Book 2 5.3 step 11: without the remainder the key cannot be rebuilt; here the hash over
    // the missing remainder fails first.
    assert_eq!(recover_test_issuer(&cert, &[]), Err(OdaError::HashMismatch));
}

#[test]
fn revoked_issuer_certificate_is_refused() {
    let (cert, remainder) = issuer_cert(&IssuerCertFields::default());
    let mut table = CaKeyTable::new();
    table.insert(test_ca());
    table.revoke(Revocation {
        rid: TEST_RID,
        ca_index: 0x01,
        serial: hex!("000123"),
    });
    let ca = table.find(&TEST_RID, 0x01, today()).unwrap();
    assert_eq!(
        oda::recover_issuer_key(
            ca,
            Certificate {
                certificate: &cert,
                remainder: &remainder,
                exponent: &[0x03],
            },
            &TEST_PAN,
            today(),
            table.revocations(),
        ),
        Err(OdaError::Revoked)
    );
    assert_eq!(
        table.find(&TEST_RID, 0x02, today()),
        Err(OdaError::CaKeyNotFound)
    );
}

/// The ICC certificate (Table 14) for the test ICC key (NIC = 96 > NI - 42 = 86).
fn icc_cert(pan: &[u8; 10], static_data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let split = ISSUER_MODULUS.len() - 42;
    let mut body = vec![0x04];
    body.extend_from_slice(pan);
    body.extend_from_slice(&hex!("1230 000456 01 01"));
    body.extend_from_slice(&[ICC_MODULUS.len() as u8, 0x01]);
    body.extend_from_slice(&ICC_MODULUS[..split]);
    let remainder = ICC_MODULUS[split..].to_vec();
    let extra = [&remainder[..], &[0x03], static_data].concat();
    (
        signed(&body, &extra, &ISSUER_PRIVATE_EXPONENT, &ISSUER_MODULUS),
        remainder,
    )
}

fn test_issuer() -> oda::IssuerPublicKey {
    let (cert, remainder) = issuer_cert(&IssuerCertFields::default());
    recover_test_issuer(&cert, &remainder).unwrap()
}

fn test_icc(static_data: &[u8]) -> oda::IccPublicKey {
    let (cert, remainder) = icc_cert(&hex!("4761739001010010FFFF"), static_data);
    oda::recover_icc_key(
        &test_issuer(),
        Certificate {
            certificate: &cert,
            remainder: &remainder,
            exponent: &[0x03],
        },
        &TEST_PAN,
        static_data,
        today(),
    )
    .unwrap()
}

#[test]
fn icc_certificate_checks_pan_and_static_data() {
    let static_data = hex!("5A0847617390010100105F24033012319F4A0182 3900");
    let icc = test_icc(&static_data);
    assert_eq!(icc.key.modulus(), ICC_MODULUS);

    let issuer = test_issuer();
    let (cert, remainder) = icc_cert(&hex!("4761739001010010FFFF"), &static_data);
    let recover = |pan: &[u8], data: &[u8], remainder: &[u8]| {
        oda::recover_icc_key(
            &issuer,
            Certificate {
                certificate: &cert,
                remainder,
                exponent: &[0x03],
            },
            pan,
            data,
            today(),
        )
    };
    assert_eq!(
        recover(&TEST_PAN, &static_data[1..], &remainder),
        Err(OdaError::HashMismatch)
    );
    assert_eq!(
        recover(&hex!("4761739001010011"), &static_data, &remainder),
        Err(OdaError::PanMismatch)
    );
    let (other_pan_cert, other_remainder) = icc_cert(&hex!("47617390010100FFFFFF"), &static_data);
    assert_eq!(
        oda::recover_icc_key(
            &issuer,
            Certificate {
                certificate: &other_pan_cert,
                remainder: &other_remainder,
                exponent: &[0x03],
            },
            &TEST_PAN,
            &static_data,
            today(),
        ),
        Err(OdaError::PanMismatch)
    );
}

/// Signed Data Format of DDA and CDA (Book 2 Tables 17 and 19).
const FORMAT_DDA: u8 = 0x05;
/// Signed Data Format of fDDA (Book C-3), as the real Visa cards in emv-replay sign it.
const FORMAT_FDDA: u8 = 0x95;

/// Signed Dynamic Application Data (Table 17 layout) of `format` with the test ICC key.
fn sdad_of(format: u8, icc_dynamic_data: &[u8], terminal_data: &[u8]) -> Vec<u8> {
    let n = ICC_MODULUS.len();
    let mut body = vec![format, 0x01, icc_dynamic_data.len() as u8];
    body.extend_from_slice(icc_dynamic_data);
    body.resize(n - 22, 0xBB);
    signed(&body, terminal_data, &ICC_PRIVATE_EXPONENT, &ICC_MODULUS)
}

/// An fDDA signature (format `95`).
fn sdad(icc_dynamic_data: &[u8], terminal_data: &[u8]) -> Vec<u8> {
    sdad_of(FORMAT_FDDA, icc_dynamic_data, terminal_data)
}

/// fDDA signs with Signed Data Format `95`, DDA with `05`; neither accepts the other's format, so
/// a DDA signature cannot be replayed as fDDA or the other way round.
#[test]
fn fdda_requires_format_95_and_dda_format_05() {
    let icc = test_icc(&hex!("3900"));
    let un = hex!("0A0B0C0D");
    let amount = hex!("000000001000");
    let currency = hex!("0978");
    let terminal = [&un[..], &amount, &currency].concat();
    let input = FddaInput {
        unpredictable_number: &un,
        amount_authorised: &amount,
        currency_code: &currency,
        card_authentication_related_data: None,
    };
    let fdda = sdad_of(FORMAT_FDDA, &hex!("02 1234"), &terminal);
    assert!(oda::verify_fdda(&icc, &fdda, input).is_ok());
    assert_eq!(
        oda::verify_dda(&icc, &fdda, &terminal).unwrap_err(),
        OdaError::Format(0x95)
    );
    let dda = sdad_of(FORMAT_DDA, &hex!("02 1234"), &terminal);
    assert!(oda::verify_dda(&icc, &dda, &terminal).is_ok());
    assert_eq!(
        oda::verify_fdda(&icc, &dda, input).unwrap_err(),
        OdaError::Format(0x05)
    );
}

#[test]
fn fdda_covers_the_terminal_data_of_its_version() {
    let icc = test_icc(&hex!("3900"));
    let un = hex!("0A0B0C0D");
    let amount = hex!("000000001000");
    let currency = hex!("0978");
    let card_data_v1 = hex!("01 0102030405060708");
    let idn = hex!("02 1234");
    // Version 01: the card authentication related data is hashed too.
    let signature = sdad(&idn, &[&un[..], &amount, &currency, &card_data_v1].concat());
    let input = FddaInput {
        unpredictable_number: &un,
        amount_authorised: &amount,
        currency_code: &currency,
        card_authentication_related_data: Some(&card_data_v1),
    };
    let verified = oda::verify_fdda(&icc, &signature, input).unwrap();
    assert_eq!(verified.icc_dynamic_number, hex!("1234"));
    assert_eq!(
        oda::verify_fdda(
            &icc,
            &signature,
            FddaInput {
                amount_authorised: &hex!("000000001001"),
                ..input
            }
        ),
        Err(OdaError::HashMismatch)
    );
    // Version 00: only UN, amount and currency.
    let signature = sdad(&idn, &[&un[..], &amount, &currency].concat());
    let input = FddaInput {
        card_authentication_related_data: Some(&hex!("00 0102")),
        ..input
    };
    assert!(oda::verify_fdda(&icc, &signature, input).is_ok());
    // A dynamic number of one byte breaks Table 18.
    let signature = sdad(&hex!("01 12"), &[&un[..], &amount, &currency].concat());
    assert_eq!(
        oda::verify_fdda(&icc, &signature, input),
        Err(OdaError::Length)
    );
}

#[test]
fn static_data_rules() {
    // SFI 11-30 records are hashed whole, SFI 1-10 records without their 70 tag and length.
    let low = hex!("7003 5A0112");
    let high = hex!("7003 9F0800");
    let data = oda::static_data_to_authenticate(
        &[
            OdaRecord { sfi: 1, data: &low },
            OdaRecord {
                sfi: 11,
                data: &high,
            },
        ],
        None,
        &hex!("3900"),
    )
    .unwrap();
    assert_eq!(data, hex!("5A0112 7003 9F0800"));
    assert_eq!(
        oda::static_data_to_authenticate(
            &[OdaRecord {
                sfi: 2,
                data: &hex!("7703 5A0112"),
            }],
            None,
            &[],
        ),
        Err(OdaError::RecordNotTemplate)
    );
    assert_eq!(
        oda::static_data_to_authenticate(&[], Some(&hex!("9F36")), &hex!("3900")),
        Err(OdaError::SdaTagList)
    );
}

#[test]
fn invalid_keys_are_refused() {
    assert_eq!(
        CaPublicKey::new(TEST_RID, 1, &hex!("C4"), &[3]),
        Err(OdaError::InvalidKey)
    );
    assert_eq!(
        CaPublicKey::new(TEST_RID, 1, &CA_MODULUS, &[]),
        Err(OdaError::InvalidKey)
    );
    assert_eq!(
        CaPublicKey::new(TEST_RID, 1, &[0xFF; 249], &[3]),
        Err(OdaError::InvalidKey)
    );
}
