//! The KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17), parsed leniently, and an
//! encoder for the same subset (used by tests and by integration tests that build chains).
//!
//! Schema: Android "Key and ID attestation", KeyDescription / AuthorizationList / RootOfTrust /
//! AttestationApplicationId (source.android.com/docs/security/features/keystore/attestation).
//! Leniency follows Google's reference verifier on real chains: AuthorizationList tags in any
//! order, unknown tags skipped, non-DER BOOLEAN values (any non-zero byte is true), any
//! attestationVersion (3, 4, 100, 200, 300, 400, 500, …). What was tolerated is listed in
//! [`KeyDescription::quirks`].

use serde::Serialize;

use crate::error::Error;
use crate::tlv::{self, Tlv};

/// The extension's OID.
pub const KEY_DESCRIPTION_OID: &str = "1.3.6.1.4.1.11129.2.1.17";

/// Where a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityLevel {
    /// Android's software keystore: proves nothing about hardware.
    Software,
    /// A trusted execution environment.
    TrustedEnvironment,
    /// A discrete secure element.
    StrongBox,
    /// A value outside the schema (kept so the verdict can name it).
    Unknown,
}

impl SecurityLevel {
    fn from_value(value: i64) -> Self {
        match value {
            0 => Self::Software,
            1 => Self::TrustedEnvironment,
            2 => Self::StrongBox,
            _ => Self::Unknown,
        }
    }

    fn value(self) -> i64 {
        match self {
            Self::Software => 0,
            Self::TrustedEnvironment => 1,
            Self::StrongBox => 2,
            Self::Unknown => 99,
        }
    }

    /// Rank for "at least" comparisons (unknown ranks lowest).
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Software => 1,
            Self::TrustedEnvironment => 2,
            Self::StrongBox => 3,
        }
    }

    /// Parses `software`, `tee` / `trusted_environment`, `strongbox` (case-insensitive).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "software" => Some(Self::Software),
            "tee" | "trusted_environment" => Some(Self::TrustedEnvironment),
            "strongbox" | "strong_box" => Some(Self::StrongBox),
            _ => None,
        }
    }
}

/// Verified boot state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifiedBootState {
    /// Full chain of trust to the OEM key.
    Verified,
    /// Booted with a user-installed key.
    SelfSigned,
    /// Unlocked bootloader, anything may run.
    Unverified,
    /// Verification failed.
    Failed,
    /// Outside the schema.
    Unknown,
}

impl VerifiedBootState {
    fn from_value(value: i64) -> Self {
        match value {
            0 => Self::Verified,
            1 => Self::SelfSigned,
            2 => Self::Unverified,
            3 => Self::Failed,
            _ => Self::Unknown,
        }
    }

    fn value(self) -> i64 {
        match self {
            Self::Verified => 0,
            Self::SelfSigned => 1,
            Self::Unverified => 2,
            Self::Failed => 3,
            Self::Unknown => 99,
        }
    }
}

/// RootOfTrust (tag 704).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootOfTrust {
    /// Digest of the key that verified the boot image.
    #[serde(with = "crate::hexser")]
    pub verified_boot_key: Vec<u8>,
    /// Bootloader locked.
    pub device_locked: bool,
    /// Verified boot state.
    pub verified_boot_state: VerifiedBootState,
    /// Digest of the verified boot data (attestation version 3 and later).
    #[serde(with = "crate::hexser::option")]
    pub verified_boot_hash: Option<Vec<u8>>,
}

/// One package of the attestation application id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Version code.
    pub version: i64,
}

/// AttestationApplicationId (tag 709): the app(s) that own the key's uid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AttestationApplicationId {
    /// Packages.
    pub packages: Vec<PackageInfo>,
    /// SHA-256 digests of the signing certificates.
    #[serde(with = "crate::hexser::list")]
    pub signature_digests: Vec<Vec<u8>>,
}

/// The fields of an AuthorizationList this verifier reads (others are skipped and their tag
/// numbers listed in `other_tags`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AuthorizationList {
    /// [1] purposes (2 = sign, 3 = verify, 7 = attest key, …).
    pub purposes: Vec<i64>,
    /// [2] algorithm (1 = RSA, 3 = EC, …).
    pub algorithm: Option<i64>,
    /// [3] key size in bits.
    pub key_size: Option<i64>,
    /// [5] digests.
    pub digests: Vec<i64>,
    /// [10] EC curve (1 = P-256).
    pub ec_curve: Option<i64>,
    /// [503] noAuthRequired.
    pub no_auth_required: bool,
    /// [701] creation time, Unix milliseconds.
    pub creation_date_time: Option<i64>,
    /// [702] origin (0 = generated in the secure hardware).
    pub origin: Option<i64>,
    /// [704] root of trust.
    pub root_of_trust: Option<RootOfTrust>,
    /// [705] OS version (e.g. 160000).
    pub os_version: Option<i64>,
    /// [706] OS patch level, YYYYMM.
    pub os_patch_level: Option<i64>,
    /// [709] attestation application id.
    pub attestation_application_id: Option<AttestationApplicationId>,
    /// [710] brand.
    pub attestation_id_brand: Option<String>,
    /// [711] device.
    pub attestation_id_device: Option<String>,
    /// [712] product.
    pub attestation_id_product: Option<String>,
    /// [716] manufacturer.
    pub attestation_id_manufacturer: Option<String>,
    /// [717] model.
    pub attestation_id_model: Option<String>,
    /// [718] vendor patch level, YYYYMMDD.
    pub vendor_patch_level: Option<i64>,
    /// [719] boot patch level, YYYYMMDD.
    pub boot_patch_level: Option<i64>,
    /// Tags present but not read here.
    pub other_tags: Vec<u32>,
}

/// The parsed KeyDescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDescription {
    /// attestationVersion (3, 4, 100, 200, 300, 400, 500, …).
    pub attestation_version: i64,
    /// attestationSecurityLevel.
    pub attestation_security_level: SecurityLevel,
    /// keymasterVersion / keyMintVersion.
    pub keymint_version: i64,
    /// keymasterSecurityLevel / keyMintSecurityLevel.
    pub keymint_security_level: SecurityLevel,
    /// The challenge the verifier issued.
    #[serde(with = "crate::hexser")]
    pub attestation_challenge: Vec<u8>,
    /// uniqueId (usually empty).
    #[serde(with = "crate::hexser")]
    pub unique_id: Vec<u8>,
    /// Properties the Android framework vouches for.
    pub software_enforced: AuthorizationList,
    /// Properties the secure hardware vouches for.
    pub hardware_enforced: AuthorizationList,
    /// Encoding irregularities tolerated while parsing (e.g. `non_der_boolean`).
    pub quirks: Vec<String>,
}

impl KeyDescription {
    /// Root of trust from the hardware list (where it belongs), else the software list.
    #[must_use]
    pub fn root_of_trust(&self) -> Option<&RootOfTrust> {
        self.hardware_enforced
            .root_of_trust
            .as_ref()
            .or(self.software_enforced.root_of_trust.as_ref())
    }

    /// Attestation application id: the framework puts it in the software list.
    #[must_use]
    pub fn application_id(&self) -> Option<&AttestationApplicationId> {
        self.software_enforced
            .attestation_application_id
            .as_ref()
            .or(self.hardware_enforced.attestation_application_id.as_ref())
    }

    /// Parses the extension value (the contents of the extension's OCTET STRING).
    ///
    /// # Errors
    /// [`Error::BadKeyDescription`] naming the part that does not parse.
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let mut quirks = Vec::new();
        let (outer, rest) = tlv::read(der, "KeyDescription")?;
        if !outer.is_universal(tlv::SEQUENCE) {
            return Err(Error::BadKeyDescription("KeyDescription is not a SEQUENCE"));
        }
        if !rest.is_empty() {
            quirks.push("trailing_data".to_owned());
        }
        let fields = tlv::children(outer.value, "KeyDescription fields")?;
        if fields.len() < 8 {
            return Err(Error::BadKeyDescription(
                "KeyDescription has fewer than 8 fields",
            ));
        }
        let attestation_version = tlv::int(&fields[0], "attestationVersion")?;
        let attestation_security_level =
            SecurityLevel::from_value(tlv::int(&fields[1], "attestationSecurityLevel")?);
        let keymint_version = tlv::int(&fields[2], "keyMintVersion")?;
        let keymint_security_level =
            SecurityLevel::from_value(tlv::int(&fields[3], "keyMintSecurityLevel")?);
        let attestation_challenge =
            tlv::expect(Some(&fields[4]), tlv::OCTET_STRING, "attestationChallenge")?
                .value
                .to_vec();
        let unique_id = tlv::expect(Some(&fields[5]), tlv::OCTET_STRING, "uniqueId")?
            .value
            .to_vec();
        let software_enforced =
            parse_authorization_list(&fields[6], "softwareEnforced", &mut quirks)?;
        let hardware_enforced =
            parse_authorization_list(&fields[7], "hardwareEnforced", &mut quirks)?;
        if fields.len() > 8 {
            quirks.push("extra_key_description_fields".to_owned());
        }
        quirks.sort();
        quirks.dedup();
        Ok(Self {
            attestation_version,
            attestation_security_level,
            keymint_version,
            keymint_security_level,
            attestation_challenge,
            unique_id,
            software_enforced,
            hardware_enforced,
            quirks,
        })
    }

    /// DER encoding of the fields this type holds (tags in ascending order, DER booleans).
    #[must_use]
    pub fn to_der(&self) -> Vec<u8> {
        tlv::sequence(&[
            tlv::integer(self.attestation_version),
            tlv::enumerated(self.attestation_security_level.value()),
            tlv::integer(self.keymint_version),
            tlv::enumerated(self.keymint_security_level.value()),
            tlv::octets(&self.attestation_challenge),
            tlv::octets(&self.unique_id),
            encode_authorization_list(&self.software_enforced),
            encode_authorization_list(&self.hardware_enforced),
        ])
    }
}

fn parse_bool(tlv: &Tlv<'_>, what: &'static str, quirks: &mut Vec<String>) -> Result<bool, Error> {
    if !tlv.is_universal(tlv::BOOLEAN) || tlv.value.len() != 1 {
        return Err(Error::BadKeyDescription(what));
    }
    let byte = tlv.value[0];
    if byte != 0 && byte != 0xff {
        // X.690 11.1 wants 0xFF for TRUE; some devices write 0x01. Google accepts it as true.
        quirks.push("non_der_boolean".to_owned());
    }
    Ok(byte != 0)
}

fn int_set(inner: &Tlv<'_>, what: &'static str) -> Result<Vec<i64>, Error> {
    if !inner.is_universal(tlv::SET) {
        return Err(Error::BadKeyDescription(what));
    }
    tlv::children(inner.value, what)?
        .iter()
        .map(|item| tlv::int(item, what))
        .collect()
}

fn utf8(inner: &Tlv<'_>, what: &'static str) -> Result<String, Error> {
    let bytes = tlv::expect(Some(inner), tlv::OCTET_STRING, what)?.value;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn parse_authorization_list(
    list: &Tlv<'_>,
    what: &'static str,
    quirks: &mut Vec<String>,
) -> Result<AuthorizationList, Error> {
    if !list.is_universal(tlv::SEQUENCE) {
        return Err(Error::BadKeyDescription(what));
    }
    let mut out = AuthorizationList::default();
    let mut previous = 0u32;
    for entry in tlv::children(list.value, what)? {
        if entry.class != tlv::CONTEXT || !entry.constructed {
            return Err(Error::BadKeyDescription(
                "AuthorizationList entry is not [n] EXPLICIT",
            ));
        }
        if entry.number <= previous {
            quirks.push("tags_not_in_ascending_order".to_owned());
        }
        previous = entry.number;
        let (inner, rest) = tlv::read(entry.value, "AuthorizationList entry")?;
        if !rest.is_empty() {
            return Err(Error::BadKeyDescription(
                "AuthorizationList entry has trailing data",
            ));
        }
        match entry.number {
            1 => out.purposes = int_set(&inner, "purpose")?,
            2 => out.algorithm = Some(tlv::int(&inner, "algorithm")?),
            3 => out.key_size = Some(tlv::int(&inner, "keySize")?),
            5 => out.digests = int_set(&inner, "digest")?,
            10 => out.ec_curve = Some(tlv::int(&inner, "ecCurve")?),
            503 => out.no_auth_required = true,
            701 => out.creation_date_time = Some(tlv::int(&inner, "creationDateTime")?),
            702 => out.origin = Some(tlv::int(&inner, "origin")?),
            704 => out.root_of_trust = Some(parse_root_of_trust(&inner, quirks)?),
            705 => out.os_version = Some(tlv::int(&inner, "osVersion")?),
            706 => out.os_patch_level = Some(tlv::int(&inner, "osPatchLevel")?),
            709 => {
                let bytes =
                    tlv::expect(Some(&inner), tlv::OCTET_STRING, "attestationApplicationId")?.value;
                out.attestation_application_id = Some(parse_application_id(bytes)?);
            }
            710 => out.attestation_id_brand = Some(utf8(&inner, "attestationIdBrand")?),
            711 => out.attestation_id_device = Some(utf8(&inner, "attestationIdDevice")?),
            712 => out.attestation_id_product = Some(utf8(&inner, "attestationIdProduct")?),
            716 => {
                out.attestation_id_manufacturer = Some(utf8(&inner, "attestationIdManufacturer")?);
            }
            717 => out.attestation_id_model = Some(utf8(&inner, "attestationIdModel")?),
            718 => out.vendor_patch_level = Some(tlv::int(&inner, "vendorPatchLevel")?),
            719 => out.boot_patch_level = Some(tlv::int(&inner, "bootPatchLevel")?),
            other => out.other_tags.push(other),
        }
    }
    Ok(out)
}

fn parse_root_of_trust(inner: &Tlv<'_>, quirks: &mut Vec<String>) -> Result<RootOfTrust, Error> {
    if !inner.is_universal(tlv::SEQUENCE) {
        return Err(Error::BadKeyDescription("rootOfTrust"));
    }
    let fields = tlv::children(inner.value, "rootOfTrust")?;
    if fields.len() < 3 {
        return Err(Error::BadKeyDescription(
            "rootOfTrust has fewer than 3 fields",
        ));
    }
    let verified_boot_key = tlv::expect(fields.first(), tlv::OCTET_STRING, "verifiedBootKey")?
        .value
        .to_vec();
    let device_locked = parse_bool(&fields[1], "deviceLocked", quirks)?;
    let verified_boot_state =
        VerifiedBootState::from_value(tlv::int(&fields[2], "verifiedBootState")?);
    let verified_boot_hash = match fields.get(3) {
        Some(field) => Some(
            tlv::expect(Some(field), tlv::OCTET_STRING, "verifiedBootHash")?
                .value
                .to_vec(),
        ),
        None => None,
    };
    Ok(RootOfTrust {
        verified_boot_key,
        device_locked,
        verified_boot_state,
        verified_boot_hash,
    })
}

fn parse_application_id(der: &[u8]) -> Result<AttestationApplicationId, Error> {
    const WHAT: &str = "attestationApplicationId";
    let (outer, _) = tlv::read(der, WHAT)?;
    if !outer.is_universal(tlv::SEQUENCE) {
        return Err(Error::BadKeyDescription(WHAT));
    }
    let fields = tlv::children(outer.value, WHAT)?;
    let packages_set = tlv::expect(fields.first(), tlv::SET, "package_infos")?;
    let digests_set = tlv::expect(fields.get(1), tlv::SET, "signature_digests")?;
    let mut out = AttestationApplicationId::default();
    for package in tlv::children(packages_set.value, "package_info")? {
        if !package.is_universal(tlv::SEQUENCE) {
            return Err(Error::BadKeyDescription("package_info"));
        }
        let parts = tlv::children(package.value, "package_info")?;
        let name = tlv::expect(parts.first(), tlv::OCTET_STRING, "package_name")?.value;
        let version = tlv::int(
            parts
                .get(1)
                .ok_or(Error::BadKeyDescription("package version"))?,
            "package version",
        )?;
        out.packages.push(PackageInfo {
            name: String::from_utf8_lossy(name).into_owned(),
            version,
        });
    }
    for digest in tlv::children(digests_set.value, "signature_digest")? {
        out.signature_digests.push(
            tlv::expect(Some(&digest), tlv::OCTET_STRING, "signature_digest")?
                .value
                .to_vec(),
        );
    }
    Ok(out)
}

fn encode_authorization_list(list: &AuthorizationList) -> Vec<u8> {
    let mut parts = Vec::new();
    let int_set = |values: &[i64]| tlv::set_of(values.iter().map(|v| tlv::integer(*v)).collect());
    if !list.purposes.is_empty() {
        parts.push(tlv::explicit(1, &int_set(&list.purposes)));
    }
    let int = |number: u32, value: Option<i64>, parts: &mut Vec<Vec<u8>>| {
        if let Some(value) = value {
            parts.push(tlv::explicit(number, &tlv::integer(value)));
        }
    };
    int(2, list.algorithm, &mut parts);
    int(3, list.key_size, &mut parts);
    if !list.digests.is_empty() {
        parts.push(tlv::explicit(5, &int_set(&list.digests)));
    }
    int(10, list.ec_curve, &mut parts);
    if list.no_auth_required {
        parts.push(tlv::explicit(503, &tlv::universal(tlv::NULL, &[])));
    }
    int(701, list.creation_date_time, &mut parts);
    int(702, list.origin, &mut parts);
    if let Some(rot) = &list.root_of_trust {
        let mut fields = vec![
            tlv::octets(&rot.verified_boot_key),
            tlv::universal(tlv::BOOLEAN, &[if rot.device_locked { 0xff } else { 0 }]),
            tlv::enumerated(rot.verified_boot_state.value()),
        ];
        if let Some(hash) = &rot.verified_boot_hash {
            fields.push(tlv::octets(hash));
        }
        parts.push(tlv::explicit(704, &tlv::sequence(&fields)));
    }
    int(705, list.os_version, &mut parts);
    int(706, list.os_patch_level, &mut parts);
    if let Some(app) = &list.attestation_application_id {
        let packages = app
            .packages
            .iter()
            .map(|p| tlv::sequence(&[tlv::octets(p.name.as_bytes()), tlv::integer(p.version)]))
            .collect();
        let digests = app
            .signature_digests
            .iter()
            .map(|d| tlv::octets(d))
            .collect();
        let inner = tlv::sequence(&[tlv::set_of(packages), tlv::set_of(digests)]);
        parts.push(tlv::explicit(709, &tlv::octets(&inner)));
    }
    for (number, value) in [
        (710, &list.attestation_id_brand),
        (711, &list.attestation_id_device),
        (712, &list.attestation_id_product),
        (716, &list.attestation_id_manufacturer),
        (717, &list.attestation_id_model),
    ] {
        if let Some(value) = value {
            parts.push(tlv::explicit(number, &tlv::octets(value.as_bytes())));
        }
    }
    int(718, list.vendor_patch_level, &mut parts);
    int(719, list.boot_patch_level, &mut parts);
    tlv::sequence(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyDescription {
        KeyDescription {
            attestation_version: 400,
            attestation_security_level: SecurityLevel::TrustedEnvironment,
            keymint_version: 400,
            keymint_security_level: SecurityLevel::TrustedEnvironment,
            attestation_challenge: b"c".to_vec(),
            unique_id: Vec::new(),
            software_enforced: AuthorizationList::default(),
            hardware_enforced: AuthorizationList {
                purposes: vec![2],
                algorithm: Some(3),
                root_of_trust: Some(RootOfTrust {
                    verified_boot_key: vec![9; 32],
                    device_locked: true,
                    verified_boot_state: VerifiedBootState::Verified,
                    verified_boot_hash: None,
                }),
                os_version: Some(150_000),
                ..AuthorizationList::default()
            },
            quirks: Vec::new(),
        }
    }

    #[test]
    fn non_der_boolean_is_true_and_noted() {
        let mut der = sample().to_der();
        // RootOfTrust's BOOLEAN TRUE is 01 01 ff; real devices have written 01 01 01.
        let at = der
            .windows(3)
            .position(|w| w == [0x01, 0x01, 0xff])
            .unwrap();
        der[at + 2] = 0x01;
        let kd = KeyDescription::parse(&der).unwrap();
        assert!(kd.root_of_trust().unwrap().device_locked);
        assert_eq!(kd.quirks, vec!["non_der_boolean".to_owned()]);
    }

    #[test]
    fn tags_in_any_order_and_unknown_tags_are_read() {
        // hardwareEnforced with [705] before [2], plus an unknown [999] and [1].
        let list = tlv::sequence(&[
            tlv::explicit(705, &tlv::integer(140_000)),
            tlv::explicit(999, &tlv::octets(b"future")),
            tlv::explicit(2, &tlv::integer(3)),
            tlv::explicit(1, &tlv::set_of(vec![tlv::integer(2)])),
        ]);
        let der = tlv::sequence(&[
            tlv::integer(500),
            tlv::enumerated(2),
            tlv::integer(500),
            tlv::enumerated(2),
            tlv::octets(b"x"),
            tlv::octets(b""),
            tlv::sequence(&[]),
            list,
        ]);
        let kd = KeyDescription::parse(&der).unwrap();
        assert_eq!(kd.attestation_version, 500);
        assert_eq!(kd.attestation_security_level, SecurityLevel::StrongBox);
        assert_eq!(kd.hardware_enforced.os_version, Some(140_000));
        assert_eq!(kd.hardware_enforced.algorithm, Some(3));
        assert_eq!(kd.hardware_enforced.purposes, vec![2]);
        assert_eq!(kd.hardware_enforced.other_tags, vec![999]);
        assert_eq!(kd.quirks, vec!["tags_not_in_ascending_order".to_owned()]);
    }

    #[test]
    fn round_trip() {
        let kd = sample();
        assert_eq!(KeyDescription::parse(&kd.to_der()).unwrap(), kd);
    }

    #[test]
    fn structural_errors_are_typed() {
        let code = |der: &[u8]| KeyDescription::parse(der).unwrap_err().code();
        assert_eq!(code(&[]), "attestation_bad_key_description");
        assert_eq!(code(&tlv::octets(b"x")), "attestation_bad_key_description");
        assert_eq!(
            code(&tlv::sequence(&[tlv::integer(3)])),
            "attestation_bad_key_description"
        );
    }
}
