//! Server secrets: the access-token signing key.
//!
//! Production passes `JWT_SECRET`; a development run without it generates a random key into
//! `<DATA_DIR>/jwt.key` (mode 0600) once and says so loudly.

use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;

/// A secret byte string whose `Debug` never shows the bytes.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// The bytes; handle with care.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Best-effort wipe; the allocator may still hold copies from earlier reallocations.
        self.0.iter_mut().for_each(|byte| *byte = 0);
    }
}

/// Fills a buffer from the operating system's CSPRNG.
///
/// # Panics
/// If the OS random source fails, which leaves nothing safe to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// A random URL-safe token with `N` bytes of entropy.
pub fn random_token<const N: usize>() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// Decodes a configured secret (hex or base64) and checks its length.
///
/// # Errors
/// When it is neither hex nor base64, or shorter than 32 bytes.
pub fn parse_secret(text: &str) -> anyhow::Result<SecretBytes> {
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .ok()
        })
        .context("JWT_SECRET must be hex or base64")?;
    if bytes.len() < 32 {
        bail!("JWT_SECRET must be at least 32 bytes (64 hex digits)");
    }
    Ok(SecretBytes(bytes))
}

/// The configured key, or the development key in the data folder (created if missing).
///
/// # Errors
/// When the configured key is invalid or the key file cannot be read or written.
pub fn load_jwt_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretBytes> {
    if let Some(text) = configured {
        return parse_secret(text);
    }
    let path = data_dir.join("jwt.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        tracing::warn!(
            path = %path.display(),
            "JWT_SECRET is not set: using the development key from the data folder; set JWT_SECRET in production"
        );
        return parse_secret(&text);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let text = hex::encode(random_bytes::<32>());
    write_private_file(&path, text.as_bytes())?;
    tracing::warn!(
        path = %path.display(),
        "JWT_SECRET is not set: GENERATED A DEVELOPMENT KEY into the data folder; set JWT_SECRET in production"
    );
    parse_secret(&text)
}

/// The PAN fingerprint key (`PAN_FINGERPRINT_KEY`), or the development key in the data
/// folder (`pan-fingerprint.key`, created if missing). Fingerprints made under one key do not
/// match under another, so production sets it once and keeps it.
///
/// # Errors
/// When the configured key is invalid or the key file cannot be read or written.
pub fn load_pan_fingerprint_key(
    configured: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<SecretBytes> {
    if let Some(text) = configured {
        return parse_secret(text).context("PAN_FINGERPRINT_KEY is invalid");
    }
    let path = data_dir.join("pan-fingerprint.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return parse_secret(&text).context("pan-fingerprint.key is invalid");
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let text = hex::encode(random_bytes::<32>());
    write_private_file(&path, text.as_bytes())?;
    tracing::warn!(
        path = %path.display(),
        "PAN_FINGERPRINT_KEY is not set: GENERATED A DEVELOPMENT KEY into the data folder; set PAN_FINGERPRINT_KEY in production"
    );
    parse_secret(&text)
}

/// Writes a file readable only by its owner (on Unix).
///
/// # Errors
/// I/O errors.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_garbage_secrets_are_refused() {
        assert!(parse_secret("abcd").is_err());
        assert!(parse_secret("not a secret at all!").is_err());
        assert!(parse_secret(&"ab".repeat(32)).is_ok());
        assert_eq!(
            format!("{:?}", parse_secret(&"ab".repeat(32)).unwrap()),
            "SecretBytes(<redacted>)"
        );
    }
}
