//! The release types the services reason about (kernels, terminal software, update tasks,
//! device software state, the compatibility table). No HTTP and no SQL shapes here.

use std::fmt;
use std::str::FromStr;

use release_manifest::SignedManifest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{DeviceId, DeviceMode, DeviceState, MerchantId, UnixMillis};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),*
        }
        impl $name {
            /// The stable name stored in the database and used on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok(Self::$variant),)* _ => Err(()) }
            }
        }
    };
}

text_enum!(
    /// Where a kernel release is in its life.
    ///
    /// `DRAFT` (stored, conformance not finished) → `READY` (passed) | `REJECTED` (failed);
    /// `READY` → `PUBLISHED` ⇄ `PAUSED`; `PUBLISHED` → `ROLLED_BACK` (by a channel rollback)
    /// → `PUBLISHED` again; any but `DRAFT` → `DEPRECATED` (final).
    KernelStatus {
        /// Stored; conformance not finished. Never served.
        Draft = "DRAFT",
        /// Passed conformance; publishable.
        Ready = "READY",
        /// Failed conformance; never publishable.
        Rejected = "REJECTED",
        /// Offered to devices of its channel within its rollout percentage.
        Published = "PUBLISHED",
        /// Rollout halted: offered to nobody until resumed.
        Paused = "PAUSED",
        /// Withdrawn by a channel rollback.
        RolledBack = "ROLLED_BACK",
        /// Retired for good.
        Deprecated = "DEPRECATED",
    }
);

text_enum!(
    /// A release channel.
    Channel {
        /// What every device runs by default.
        Stable = "stable",
        /// Early adopters.
        Beta = "beta",
    }
);

text_enum!(
    /// How urgently devices should install terminal software.
    UpdateType {
        /// Must be installed before the next transaction.
        Mandatory = "mandatory",
        /// The merchant chooses when.
        Optional = "optional",
        /// A security fix: installed at the next idle moment.
        Security = "security",
    }
);

text_enum!(
    /// Per-device state of a push task.
    TaskState {
        /// Created; the device has not checked in since.
        Pending = "pending",
        /// Handed to the device at a check-in.
        Delivered = "delivered",
        /// The device reports it installed the update.
        Installed = "installed",
        /// The device reports the installation failed.
        Failed = "failed",
    }
);

/// What the conformance run found, stored with the release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConformanceSummary {
    /// Every case identical to the native kernel.
    pub passed: bool,
    /// WebAssembly engine used.
    pub engine: String,
    /// Cases run.
    pub cases: usize,
    /// Cases that differed.
    pub failures: usize,
    /// Why the module could not be loaded, if it could not.
    pub load_error: Option<String>,
    /// Wall time of the run, milliseconds.
    pub duration_ms: u64,
    /// One line per case (`kernel_host::conformance::Report`'s text).
    pub report: String,
}

/// A kernel release.
#[derive(Debug, Clone)]
pub struct KernelRelease {
    /// Id.
    pub id: Uuid,
    /// Signed manifest as uploaded.
    pub signed: SignedManifest,
    /// Status.
    pub status: KernelStatus,
    /// Conformance result, once run.
    pub conformance: Option<ConformanceSummary>,
    /// Channel, once published.
    pub channel: Option<Channel>,
    /// Share of the channel's devices offered this release, 0–100.
    pub rollout_percent: u8,
    /// When published to its channel (orders the channel's releases).
    pub published_at: Option<UnixMillis>,
    /// Who uploaded it.
    pub created_by: String,
    /// Upload time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// Which devices a terminal release is for; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetGroups {
    /// Device models (exact, as reported at registration).
    #[serde(default)]
    pub models: Vec<String>,
    /// Merchants.
    #[serde(default)]
    pub merchant_ids: Vec<Uuid>,
    /// Modes.
    #[serde(default)]
    pub modes: Vec<DeviceMode>,
}

impl TargetGroups {
    /// Whether `device` is in every non-empty group.
    pub fn matches(&self, device: &FleetDevice) -> bool {
        (self.models.is_empty() || self.models.contains(&device.model))
            && (self.merchant_ids.is_empty() || self.merchant_ids.contains(&device.merchant_id.0))
            && (self.modes.is_empty() || self.modes.contains(&device.mode))
    }
}

/// A terminal-software release.
#[derive(Debug, Clone)]
pub struct TerminalRelease {
    /// Id.
    pub id: Uuid,
    /// Signed manifest (kind `terminal`): version, artifact digest and size.
    pub signed: SignedManifest,
    /// Urgency.
    pub update_type: UpdateType,
    /// Lowest OS version it runs on (dotted numbers).
    pub min_os_version: String,
    /// Target device groups.
    pub targets: TargetGroups,
    /// Release notes.
    pub release_notes: String,
    /// `RELEASED` or `DEPRECATED`.
    pub status: String,
    /// Who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A push task.
#[derive(Debug, Clone)]
pub struct UpdateTask {
    /// Id.
    pub id: Uuid,
    /// Terminal release.
    pub release_id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// State.
    pub state: TaskState,
    /// Device's note on the result.
    pub detail: Option<String>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// A device as release targeting sees it, with what it last reported.
#[derive(Debug, Clone)]
pub struct FleetDevice {
    /// Id.
    pub id: DeviceId,
    /// Merchant.
    pub merchant_id: MerchantId,
    /// Mode.
    pub mode: DeviceMode,
    /// Model.
    pub model: String,
    /// Lifecycle state.
    pub state: DeviceState,
    /// OS version from registration.
    pub os_version: String,
    /// App version from registration.
    pub registered_app_version: String,
    /// Terminal version from the last check-in.
    pub terminal_version: Option<String>,
    /// Kernel version from the last check-in.
    pub kernel_version: Option<String>,
    /// Last check-in.
    pub last_check_in: Option<UnixMillis>,
}

impl FleetDevice {
    /// The terminal version the device runs: the last check-in's, else the registration's.
    pub fn current_terminal_version(&self) -> &str {
        self.terminal_version
            .as_deref()
            .unwrap_or(&self.registered_app_version)
    }
}

/// One row of the compatibility table: `terminal_version` runs kernels of `abi_version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct CompatEntry {
    /// Terminal software version.
    pub terminal_version: String,
    /// Kernel ABI version.
    pub abi_version: u32,
}
