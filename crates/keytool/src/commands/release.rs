//! `release`: Ed25519 release keys and signed manifests, with the canonical encoding of the
//! `release-manifest` crate (the same code the server verifies with).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use base64::Engine;
use release_manifest::ed25519_dalek::SigningKey;
use release_manifest::{
    ArtifactKind, KeyRing, Manifest, ManifestError, SignedManifest, parse_public_key,
    parse_signing_key, sha256_hex,
};
use serde::Serialize;

use crate::cli::{
    ArtifactKindArg, ReleaseCommand, ReleaseKeygenArgs, ReleasePublicKeyArgs, ReleaseSignArgs,
    ReleaseVerifyArgs,
};
use crate::error::CliError;
use crate::output::{Report, Verified};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn refused(error: &ManifestError) -> CliError {
    CliError::bad_input(error.code(), error.message())
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|error| CliError::bad_input("file_unreadable", format!("{flag}: {error}")))
}

fn signing_key(path: &Path) -> Result<SigningKey, CliError> {
    let bytes = read("--key", path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::bad_input("release_key_malformed", "--key: not text"))?;
    parse_signing_key(&text).map_err(|e| refused(&e).for_flag("--key"))
}

#[derive(Serialize)]
struct PublicKeyOutput {
    public_key_hex: String,
    public_key_base64: String,
    release_public_keys_entry: String,
}

fn public_key_output(key: &SigningKey, key_id: &str) -> PublicKeyOutput {
    let public = key.verifying_key().to_bytes();
    PublicKeyOutput {
        public_key_hex: hex::encode(public),
        public_key_base64: B64.encode(public),
        release_public_keys_entry: format!("{key_id}={}", hex::encode(public)),
    }
}

fn keygen(args: &ReleaseKeygenArgs) -> Result<Report, CliError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .map_err(|error| CliError::bad_input("random_unavailable", error.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let mut text = hex::encode(seed);
    seed.fill(0);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&args.out)
        .and_then(|mut file| file.write_all(format!("{text}\n").as_bytes()));
    // Clear the hex copy of the seed whatever happened.
    text.clear();
    text.shrink_to_fit();
    written.map_err(|error| CliError::bad_input("file_unwritable", format!("--out: {error}")))?;
    Ok(Report::of(&public_key_output(&key, &args.key_id)))
}

fn public_key(args: &ReleasePublicKeyArgs) -> Result<Report, CliError> {
    let key = signing_key(&args.key)?;
    Ok(Report::of(&public_key_output(&key, &args.key_id)))
}

#[derive(Serialize)]
struct SignOutput {
    sha256: String,
    size: u64,
    key_id: String,
    signature: String,
    /// The value of the upload's `X-Release-Manifest` header.
    manifest_header: String,
    signed_manifest: String,
}

fn sign(args: &ReleaseSignArgs) -> Result<Report, CliError> {
    let key = signing_key(&args.key)?;
    let artifact = read("--wasm", &args.wasm)?;
    let created_at = match args.created_at {
        Some(secs) => secs,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            }),
    };
    let manifest = Manifest {
        kind: match args.kind {
            ArtifactKindArg::Kernel => ArtifactKind::Kernel,
            ArtifactKindArg::Terminal => ArtifactKind::Terminal,
        },
        name: args.name.clone(),
        version: args.version.clone(),
        abi_version: args.abi_version,
        schemes: args.schemes.clone(),
        aids: args
            .aids
            .iter()
            .map(|aid| aid.to_ascii_uppercase())
            .collect(),
        sha256: sha256_hex(&artifact),
        size: artifact.len() as u64,
        created_at,
    };
    let signed = manifest.sign(&args.key_id, &key).map_err(|e| refused(&e))?;
    let json = serde_json::to_string(&signed)
        .map_err(|error| CliError::bad_input("encoding", error.to_string()))?;
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{json}\n"))
            .map_err(|error| CliError::bad_input("file_unwritable", format!("--out: {error}")))?;
    }
    Ok(Report::of(&SignOutput {
        sha256: signed.manifest.sha256.clone(),
        size: signed.manifest.size,
        key_id: signed.key_id.clone(),
        signature: signed.signature.clone(),
        manifest_header: B64.encode(json.as_bytes()),
        signed_manifest: json,
    }))
}

fn verify(args: &ReleaseVerifyArgs) -> Result<Report, CliError> {
    let public =
        parse_public_key(&args.public_key).map_err(|e| refused(&e).for_flag("--public-key"))?;
    let text = read("--manifest", &args.manifest)?;
    let signed: SignedManifest = serde_json::from_slice(&text).map_err(|error| {
        CliError::bad_input("manifest_malformed", format!("--manifest: {error}"))
    })?;
    let mut ring = KeyRing::default();
    ring.insert(&signed.key_id, public);
    let mut result = signed.verify(&ring);
    if result.is_ok()
        && let Some(path) = &args.artifact
    {
        result = signed.manifest.check_artifact(&read("--artifact", path)?);
    }
    match result {
        Ok(()) => Ok(Report::of(&Verified { valid: true })),
        Err(
            error @ (ManifestError::SignatureInvalid
            | ManifestError::HashMismatch
            | ManifestError::KeyUnknown),
        ) => Err(CliError::mismatch(error.code(), error.message())),
        Err(error) => Err(refused(&error)),
    }
}

pub(super) fn run(command: &ReleaseCommand) -> Result<Report, CliError> {
    match command {
        ReleaseCommand::Keygen(args) => keygen(args),
        ReleaseCommand::PublicKey(args) => public_key(args),
        ReleaseCommand::Sign(args) => sign(args),
        ReleaseCommand::Verify(args) => verify(args),
    }
}
