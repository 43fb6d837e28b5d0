//! The records of key custody: stored keys, dual-control ceremonies, key profiles and device
//! key sets. None of them carries clear key material: wrapped values are [`Sealed`].

use std::str::FromStr;

use payment_crypto::KeyAlgorithm;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::store::Sealed;
use crate::domain::{DeviceId, DeviceMode, UnixMillis};
use crate::service::ports::DukptScheme;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Stable name, as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok(Self::$variant),)+ _ => Err(()) }
            }
        }
    };
}

text_enum!(
    /// What a stored key is for.
    KeyUsageKind {
        /// Base derivation key for DUKPT.
        Bdk = "bdk",
        /// Zone PIN key of a processor connection.
        Zpk = "zpk",
        /// Key-encryption key (e.g. a zone master key) for TR-31 imports.
        Kek = "kek",
    }
);

text_enum!(
    /// Lifecycle of a stored key.
    KeyState {
        /// Being assembled from components.
        Pending = "PENDING",
        /// Complete, not in use yet.
        Ready = "READY",
        /// In use.
        Active = "ACTIVE",
        /// No new use; kept for existing key sets.
        Retired = "RETIRED",
    }
);

text_enum!(
    /// How a key entered the store.
    KeyOrigin {
        /// Drawn by the server.
        Generated = "generated",
        /// Combined from custodians' components.
        Components = "components",
        /// Unwrapped from a TR-31 block.
        Tr31 = "tr31",
    }
);

text_enum!(
    /// Progress of a dual-control ceremony.
    CeremonyState {
        /// Waiting for components.
        Open = "OPEN",
        /// All components in; waiting for the combined KCV confirmation.
        Complete = "COMPLETE",
        /// Confirmed; the key is active and the components are erased.
        Confirmed = "CONFIRMED",
    }
);

text_enum!(
    /// Lifecycle of a device key set.
    KeySetState {
        /// Initial key sent; waiting for the device's KCV confirmation.
        Issued = "ISSUED",
        /// Confirmed; used for transactions.
        Active = "ACTIVE",
        /// Replaced by a newer key set.
        Superseded = "SUPERSEDED",
        /// Destroyed (device revoked); a tombstone for audit.
        Destroyed = "DESTROYED",
    }
);

/// Stored name of a DUKPT scheme.
pub fn scheme_name(scheme: DukptScheme) -> &'static str {
    match scheme {
        DukptScheme::Aes128 => "aes128",
        DukptScheme::Tdes => "tdes",
    }
}

/// Parses a stored DUKPT scheme name.
pub fn parse_scheme(text: &str) -> Option<DukptScheme> {
    match text {
        "aes128" => Some(DukptScheme::Aes128),
        "tdes" => Some(DukptScheme::Tdes),
        _ => None,
    }
}

/// A key in the store (metadata plus its wrapped value).
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Id.
    pub id: Uuid,
    /// Human name.
    pub name: String,
    /// Usage.
    pub usage: KeyUsageKind,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// State.
    pub state: KeyState,
    /// Origin.
    pub origin: KeyOrigin,
    /// KCV (hex), once the key is complete.
    pub kcv: Option<String>,
    /// BDK only: AES 4-byte BDK id or TDES 5-byte key set identifier, hex.
    pub dukpt_key_id: Option<String>,
    /// ZPK only: processor connection name.
    pub processor: Option<String>,
    /// ZPK only: PIN block format (0 or 4).
    pub pin_format: Option<u8>,
    /// The wrapped key, once complete.
    pub sealed: Option<Sealed>,
    /// Actor that created it.
    pub created_by: String,
    /// Created.
    pub created_at: UnixMillis,
    /// Activated.
    pub activated_at: Option<UnixMillis>,
    /// Retired.
    pub retired_at: Option<UnixMillis>,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// A named custodian of a ceremony and what they submitted.
#[derive(Debug, Clone)]
pub struct Custodian {
    /// The user.
    pub user_id: Uuid,
    /// 1-based order.
    pub position: i64,
    /// KCV of the submitted component.
    pub component_kcv: Option<String>,
    /// The wrapped component (erased at confirmation).
    pub sealed: Option<Sealed>,
    /// When submitted.
    pub submitted_at: Option<UnixMillis>,
}

/// A dual-control import.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// Id.
    pub id: Uuid,
    /// The key being imported.
    pub key_id: Uuid,
    /// State.
    pub state: CeremonyState,
    /// Who opened it.
    pub created_by: String,
    /// Opened.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
    /// The custodians, in order.
    pub custodians: Vec<Custodian>,
}

/// Which DUKPT variant and BDK new key sets of a device mode use.
#[derive(Debug, Clone)]
pub struct KeyProfile {
    /// Device mode.
    pub mode: DeviceMode,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// Pinned BDK, or the newest active BDK of the scheme's family.
    pub bdk_id: Option<Uuid>,
    /// Rotate once the transaction counter passes this.
    pub rotate_after: i64,
    /// Who changed it.
    pub updated_by: String,
    /// When.
    pub updated_at: UnixMillis,
}

/// A device's key set.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// Per-device version.
    pub version: i64,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// BDK.
    pub bdk_id: Uuid,
    /// AES: initial key id (8 bytes); TDES: initial KSN (10 bytes).
    pub initial_key_id: Vec<u8>,
    /// KCV of the initial key.
    pub kcv: String,
    /// State.
    pub state: KeySetState,
    /// The wrapped initial key (erased when superseded or destroyed).
    pub sealed: Option<Sealed>,
    /// When a rotation was asked for.
    pub rotation_requested_at: Option<UnixMillis>,
    /// Issued.
    pub created_at: UnixMillis,
    /// Confirmed by the device.
    pub confirmed_at: Option<UnixMillis>,
    /// Destroyed.
    pub destroyed_at: Option<UnixMillis>,
    /// Last change.
    pub updated_at: UnixMillis,
}

text_enum!(
    /// Lifecycle of a trusted release key.
    ReleaseKeyState {
        /// Verifies uploads.
        Active = "ACTIVE",
        /// No longer trusted (rotated out or withdrawn).
        Retired = "RETIRED",
    }
);

/// A trusted release (Ed25519) public key, sealed under the master key for integrity.
#[derive(Debug, Clone)]
pub struct ReleaseKeyRecord {
    /// The manifest's `key_id`.
    pub key_id: String,
    /// The 32-byte public key, sealed.
    pub sealed: Sealed,
    /// SHA-256 of the public key, hex.
    pub fingerprint: String,
    /// State.
    pub state: ReleaseKeyState,
    /// `config` (seeded from `RELEASE_PUBLIC_KEYS`) or `api`.
    pub origin: String,
    /// Audit actor.
    pub created_by: String,
    /// Created.
    pub created_at: UnixMillis,
    /// Retired.
    pub retired_at: Option<UnixMillis>,
}
