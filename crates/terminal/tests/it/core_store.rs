//! The secure store's key injection and DUKPT counter without a server: the test plays the
//! server's side of remote key injection (ECDH, HKDF-SHA256 KEK, TR-31 version D block, the
//! server's `service::keys::injection` recipe) with `payment-crypto` and `p256`.

use hkdf::Hkdf;
use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Ksn, WorkingKeyUsage};
use payment_crypto::kcv::{KcvMethod, kcv};
use payment_crypto::tr31::{
    self, Algorithm, Exportability, KeyBlockHeader, KeyUsage, ModeOfUse, OptionalBlock, Version,
};
use payment_crypto::{KeyAlgorithm, RandomSource, SecretKey};
use sha2::Sha256;
use terminal::dukpt::DukptScheme;
use terminal::store::{DeviceConfig, InjectionPackage, KdfParams, SecureStore, StoreKey};
use uuid::Uuid;
use zeroize::Zeroizing;

struct OsRandom;
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }
}

const BDK: [u8; 16] = [0x42; 16];
const IKID: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

/// The server's answer to a key request for `device_public` (SEC1).
fn server_answer(
    device: Uuid,
    key_set: Uuid,
    device_public: &[u8],
    kcv_override: Option<&str>,
) -> (Vec<u8>, String, String) {
    let initial = HostBdk::new(&SecretKey::aes(&BDK).unwrap())
        .unwrap()
        .derive_initial_key(&InitialKeyId::new(IKID));
    let server_secret = p256::SecretKey::from_slice(&[0x33; 32]).unwrap();
    let server_public = server_secret.public_key().to_sec1_bytes().to_vec();
    let device_public = p256::PublicKey::from_sec1_bytes(device_public).unwrap();
    let shared =
        p256::ecdh::diffie_hellman(server_secret.to_nonzero_scalar(), device_public.as_affine());
    let mut info = format!("softpos-rki-v1|{device}|{key_set}|").into_bytes();
    info.extend_from_slice(&server_public);
    info.extend_from_slice(&device_public.to_sec1_bytes());
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(
        Some(b"SUNBAY-SOFTPOS-RKI-KEK-V1"),
        shared.raw_secret_bytes().as_slice(),
    )
    .expand(&info, &mut okm)
    .unwrap();
    let kek = SecretKey::aes(&okm).unwrap();
    let mut header = KeyBlockHeader::new(
        Version::D,
        KeyUsage::InitialDukptKey,
        Algorithm::Aes,
        ModeOfUse::KeyDerivation,
        Exportability::NonExportable,
    );
    header
        .optional_blocks
        .push(OptionalBlock::new(*b"IK", hex::encode_upper(IKID).as_bytes()).unwrap());
    let block = tr31::wrap(&kek, &header, &initial, &mut OsRandom).unwrap();
    let kcv =
        kcv_override.map_or_else(|| kcv(&initial, KcvMethod::Cmac).to_string(), str::to_owned);
    (server_public, block, kcv)
}

fn inject(store: &SecureStore, kcv_override: Option<&str>) -> Result<Uuid, String> {
    let device = Uuid::new_v4();
    let key_set = Uuid::new_v4();
    let ephemeral = store.begin_key_injection();
    let (server_public, block, kcv) = server_answer(device, key_set, &ephemeral, kcv_override);
    store
        .finish_key_injection(&InjectionPackage {
            device_id: device,
            key_set_id: key_set,
            version: 1,
            scheme: DukptScheme::Aes128,
            server_public_key: &server_public,
            key_block: &block,
            kcv: &kcv,
            initial_key_id: &IKID,
        })
        .map_err(|e| e.code().to_owned())?;
    store
        .activate_key_set(key_set)
        .map_err(|e| e.code().to_owned())?;
    Ok(key_set)
}

#[test]
fn injected_keys_agree_with_the_host_and_the_counter_is_on_disk_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terminal.store");
    let key = || StoreKey::Passphrase {
        passphrase: Zeroizing::new("store test".to_owned()),
        params: KdfParams::INSECURE_FAST,
    };
    let store = SecureStore::create(&path, &key(), DeviceConfig::default()).unwrap();
    assert_eq!(
        inject(&store, Some("0000000000")).unwrap_err(),
        "kcv_mismatch"
    );
    assert!(
        store.active_key_set().is_none(),
        "a KCV mismatch installs nothing"
    );
    // The ephemeral key is single use.
    assert_eq!(
        store
            .finish_key_injection(&InjectionPackage {
                device_id: Uuid::nil(),
                key_set_id: Uuid::nil(),
                version: 1,
                scheme: DukptScheme::Aes128,
                server_public_key: &[],
                key_block: "",
                kcv: "00",
                initial_key_id: &IKID,
            })
            .unwrap_err()
            .code(),
        "no_injection_in_progress"
    );
    let key_set = inject(&store, None).unwrap();
    let active = store.active_key_set().unwrap();
    assert_eq!(active.id, key_set);
    assert_eq!(active.initial_key_id, hex::encode_upper(IKID));

    let host = HostBdk::new(&SecretKey::aes(&BDK).unwrap()).unwrap();
    for expected in 1..=3u32 {
        let keys = store.next_transaction_keys().unwrap();
        assert_eq!(keys.counter, expected);
        // Before the keys are used, the file already holds the next counter.
        let on_disk = SecureStore::open(&path, &key()).unwrap();
        assert_eq!(
            on_disk.active_key_set().unwrap().next_counter,
            Some(expected + 1)
        );
        let ksn = Ksn::from_bytes(&keys.ksn).unwrap();
        let host_pin = host
            .derive_working_key(&ksn, WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
            .unwrap();
        let host_data = host
            .derive_working_key(
                &ksn,
                WorkingKeyUsage::DataEncryptionEncrypt,
                KeyAlgorithm::Aes128,
            )
            .unwrap();
        assert_eq!(keys.pin_key(), &host_pin);
        assert_eq!(keys.data_key(), &host_data);
    }
    // Nothing of the keys is on disk in clear.
    let image = std::fs::read(&path).unwrap();
    let keys = store.next_transaction_keys().unwrap();
    let pin_key = keys.pin_key().expose_secret();
    assert!(!image.windows(pin_key.len()).any(|w| w == pin_key));
}

#[test]
fn a_tampered_key_block_is_refused() {
    let store = SecureStore::in_memory(DeviceConfig::default());
    let device = Uuid::new_v4();
    let key_set = Uuid::new_v4();
    let ephemeral = store.begin_key_injection();
    let (server_public, block, kcv) = server_answer(device, key_set, &ephemeral, None);
    let mut tampered = block.into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let err = store
        .finish_key_injection(&InjectionPackage {
            device_id: device,
            key_set_id: key_set,
            version: 1,
            scheme: DukptScheme::Aes128,
            server_public_key: &server_public,
            key_block: std::str::from_utf8(&tampered).unwrap(),
            kcv: &kcv,
            initial_key_id: &IKID,
        })
        .unwrap_err();
    assert_eq!(err.code(), "key_block_invalid");
    assert!(store.key_sets().is_empty());
}
