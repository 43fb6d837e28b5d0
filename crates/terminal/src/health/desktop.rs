//! Real checks on a desktop terminal: a debugger attached (`TracerPid` in
//! `/proc/self/status`), running as root (the effective uid there), and the own binary's SHA-256
//! against a signed release manifest. Each is opt-in ([`DesktopChecks`]): a CI machine runs tests
//! as root, and the terminal binary of a development build has no signed manifest.
//!
//! How they show in the report: root adds the indicator `running_as_root`; a binary that does
//! not match its verified manifest reports its own digest as `app_signing_digest`, which no
//! policy allows (the desktop's analogue of an app re-signed with another certificate).

use std::path::PathBuf;

use release_manifest::{KeyRing, SignedManifest};
use sha2::{Digest, Sha256};

/// Which real checks to run.
#[derive(Debug, Clone, Default)]
pub struct DesktopChecks {
    /// Look for a tracer.
    pub debugger: bool,
    /// Flag running as root.
    pub root: bool,
    /// Check the own binary against this signed manifest, verified with these keys.
    pub binary: Option<BinaryCheck>,
}

/// A signed manifest for the terminal binary and the keys it must verify under.
#[derive(Debug, Clone)]
pub struct BinaryCheck {
    /// The manifest.
    pub manifest: SignedManifest,
    /// Trusted release keys.
    pub keys: KeyRing,
    /// The binary to hash (default: the running executable).
    pub binary: Option<PathBuf>,
}

/// What the real checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measured {
    /// Root indicators found.
    pub root_indicators: Vec<String>,
    /// A tracer is attached.
    pub debugger_attached: bool,
    /// When the binary does not match a verified manifest: its SHA-256, hex.
    pub binary_digest_mismatch: Option<String>,
}

/// One `Key:\tvalue` field of `/proc/self/status`.
fn proc_status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|value| value.trim().to_owned())
    })
}

/// The pid of the process tracing this one (a debugger, `strace`), if any. Linux only; `None`
/// elsewhere.
#[must_use]
pub fn tracer_pid() -> Option<u32> {
    proc_status_field("TracerPid")?
        .parse::<u32>()
        .ok()
        .filter(|pid| *pid != 0)
}

/// The effective user id, from `/proc/self/status` (`Uid: real effective saved fs`).
#[must_use]
pub fn effective_uid() -> Option<u32> {
    proc_status_field("Uid")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// SHA-256 of a file, hex.
///
/// # Errors
/// I/O errors.
pub fn file_sha256(path: &std::path::Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

impl BinaryCheck {
    /// Whether the binary matches the manifest and the manifest verifies; on mismatch (or any
    /// failure to check) the binary's digest, or `"unverifiable"`.
    #[must_use]
    pub fn mismatch(&self) -> Option<String> {
        let path = self.binary.clone().or_else(|| std::env::current_exe().ok());
        let Some(digest) = path.and_then(|path| file_sha256(&path).ok()) else {
            return Some("0".repeat(64));
        };
        let verified = self.manifest.verify(&self.keys).is_ok();
        (!verified || !self.manifest.manifest.sha256.eq_ignore_ascii_case(&digest))
            .then_some(digest)
    }
}

impl DesktopChecks {
    /// Every check except the binary one.
    #[must_use]
    pub fn all() -> Self {
        Self {
            debugger: true,
            root: true,
            binary: None,
        }
    }

    /// Runs the enabled checks.
    #[must_use]
    pub fn run(&self) -> Measured {
        let mut measured = Measured::default();
        if self.debugger {
            measured.debugger_attached = tracer_pid().is_some();
        }
        if self.root && effective_uid() == Some(0) {
            measured.root_indicators.push("running_as_root".to_owned());
        }
        if let Some(check) = &self.binary {
            measured.binary_digest_mismatch = check.mismatch();
        }
        measured
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use release_manifest::{ArtifactKind, Manifest};

    #[test]
    fn root_and_tracer_follow_proc() {
        let measured = DesktopChecks::all().run();
        let uid = effective_uid();
        assert_eq!(
            measured
                .root_indicators
                .contains(&"running_as_root".to_owned()),
            uid == Some(0)
        );
        assert_eq!(measured.debugger_attached, tracer_pid().is_some());
        if cfg!(target_os = "linux") {
            assert!(uid.is_some(), "/proc/self/status has a Uid line on Linux");
        }
    }

    #[test]
    fn binary_digest_against_a_signed_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("softpos-terminal");
        std::fs::write(&binary, b"terminal build 1").unwrap();
        let key = release_manifest::ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let mut keys = KeyRing::default();
        keys.insert("release-1", key.verifying_key());
        let manifest = Manifest {
            kind: ArtifactKind::Terminal,
            name: "softpos-terminal".to_owned(),
            version: "1.0.0".to_owned(),
            abi_version: None,
            schemes: Vec::new(),
            aids: Vec::new(),
            sha256: file_sha256(&binary).unwrap(),
            size: 16,
            created_at: 1_700_000_000,
        };
        let check = BinaryCheck {
            manifest: manifest.sign("release-1", &key).unwrap(),
            keys: keys.clone(),
            binary: Some(binary.clone()),
        };
        assert_eq!(check.mismatch(), None);
        std::fs::write(&binary, b"terminal build 2").unwrap();
        assert_eq!(check.mismatch(), Some(file_sha256(&binary).unwrap()));
        // A manifest signed by an unknown key does not vouch for anything.
        let other = release_manifest::ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let forged = BinaryCheck {
            manifest: Manifest {
                sha256: file_sha256(&binary).unwrap(),
                ..manifest
            }
            .sign("release-1", &other)
            .unwrap(),
            keys,
            binary: Some(binary.clone()),
        };
        assert!(forged.mismatch().is_some());
    }
}
