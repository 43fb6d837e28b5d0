//! Kernel updates on the terminal side: a signed kernel `.wasm` is installed only when its
//! manifest verifies under a trusted release key and its bytes match; a bad signature or a
//! tampered file leaves the installed kernel working; rollback brings the previous one back.
//!
//! The `.wasm` is the one `cargo xtask test` builds (`KERNEL_WASM`); without that variable it
//! is built here as `kernel-host`'s tests do (`crate::kernel_wasm`).

use kernel_host::Kernel;
use release_manifest::ed25519_dalek::SigningKey;
use release_manifest::{ArtifactKind, KeyRing, Manifest, SignedManifest};
use terminal::client::kernel::{KernelStore, verify_kernel};
use terminal::money;
use terminal::payment::{self, CardSpec, PaymentRequest, ReaderConfig};

use crate::kernel_wasm;

fn manifest(version: &str, wasm: &[u8], key: &SigningKey) -> SignedManifest {
    Manifest {
        kind: ArtifactKind::Kernel,
        name: "sunbay-emv-kernel".to_owned(),
        version: version.to_owned(),
        abi_version: Some(kernel_host::ABI_VERSION),
        schemes: vec!["mastercard".to_owned(), "visa".to_owned()],
        aids: Vec::new(),
        sha256: release_manifest::sha256_hex(wasm),
        size: wasm.len() as u64,
        created_at: 1_764_000_000,
    }
    .sign("release-1", key)
    .unwrap()
}

fn runs_a_transaction(kernels: &KernelStore, keys: &KeyRing) {
    let mut installed = kernels.load(keys).expect("installed kernel loads");
    let mut card = payment::card::open(&CardSpec::Virtual("visa-fdda".to_owned())).unwrap();
    let tap = payment::tap(
        &mut installed.kernel,
        &ReaderConfig::default(),
        card.as_mut(),
        &PaymentRequest {
            amount_minor: 1_000,
            currency: money::currency("USD").unwrap(),
            location: None,
            idempotency_key: None,
        },
    )
    .unwrap();
    assert_eq!(tap.kind, "online_request");
    assert_eq!(installed.kernel.name(), "wasmi");
}

#[test]
fn install_verify_refuse_and_roll_back() {
    let wasm = kernel_wasm();
    let release_key = SigningKey::from_bytes(&[11u8; 32]);
    let mut keys = KeyRing::default();
    keys.insert("release-1", release_key.verifying_key());
    let dir = tempfile::tempdir().unwrap();
    let kernels = KernelStore::new(dir.path().join("kernels"));

    assert_eq!(
        kernels.load(&keys).unwrap_err().code(),
        "kernel_none_installed"
    );
    let v1 = manifest("1.0.0", wasm, &release_key);
    kernels.install(&v1, &keys, wasm).unwrap();
    runs_a_transaction(&kernels, &keys);

    // Signed by a key the terminal does not trust: refused, 1.0.0 stays and keeps working.
    let rogue = SigningKey::from_bytes(&[12u8; 32]);
    let forged = manifest("1.1.0", wasm, &rogue);
    assert_eq!(
        kernels.install(&forged, &keys, wasm).unwrap_err().code(),
        "kernel_bad_signature"
    );
    // A valid manifest with bytes that are not the ones it describes.
    let mut tampered = wasm.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let v11 = manifest("1.1.0", wasm, &release_key);
    assert_eq!(
        kernels.install(&v11, &keys, &tampered).unwrap_err().code(),
        "kernel_digest_mismatch"
    );
    // Signed and matching, but not a kernel the host can load.
    let junk = b"\0asm\x01\0\0\0".to_vec();
    let junk_manifest = manifest("1.1.1", &junk, &release_key);
    assert_eq!(
        verify_kernel(&junk_manifest, &keys, &junk)
            .unwrap_err()
            .code(),
        "kernel_rejected"
    );
    assert_eq!(kernels.current_manifest().unwrap(), Some(v1.clone()));
    runs_a_transaction(&kernels, &keys);

    // A real update keeps the old kernel for rollback.
    kernels.install(&v11, &keys, wasm).unwrap();
    assert_eq!(kernels.current_manifest().unwrap(), Some(v11.clone()));
    assert_eq!(kernels.previous_manifest().unwrap(), Some(v1.clone()));
    let restored = kernels.rollback(&keys).unwrap();
    assert_eq!(restored, v1);
    assert_eq!(kernels.current_manifest().unwrap(), Some(v1));
    runs_a_transaction(&kernels, &keys);

    // A file changed on disk after installation is refused at load.
    std::fs::write(dir.path().join("kernels/current.wasm"), &tampered).unwrap();
    assert_eq!(
        kernels.load(&keys).unwrap_err().code(),
        "kernel_digest_mismatch"
    );
}
