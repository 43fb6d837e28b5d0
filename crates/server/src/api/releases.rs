//! `/api/v1/kernels` (signed kernel releases: upload, conformance report, channel lifecycle),
//! `/api/v1/kernel-channels`, `/api/v1/kernel-compatibility`, the device's kernel
//! (`/api/v1/device/kernel`, signed) and the web demo's anonymous read (`/api/v1/public/kernel`).
//!
//! Upload format: the raw `.wasm` bytes as the body (`Content-Type: application/wasm`, up to
//! `RELEASE_MAX_UPLOAD_BYTES`, a per-route limit above the global `MAX_BODY_BYTES`) and the
//! signed manifest in the `X-Release-Manifest` header as base64 (standard alphabet) of its
//! JSON `{"manifest":{...},"key_id":"...","signature":"<base64 Ed25519>"}`; the signed bytes
//! are documented in the `release-manifest` crate.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use release_manifest::SignedManifest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AppJson, AppPath, AppQuery, Authorized, Ctx, Policy, SignedDevice};
use super::state::AppState;
use crate::domain::{Role, Scope, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::service::releases::model::{
    Channel, CompatEntry, ConformanceSummary, KernelRelease, KernelStatus,
};

/// Uploading and managing releases.
#[derive(Debug)]
pub struct ReleaseManagers;
impl Policy for ReleaseManagers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::SecurityOfficer];
    const SCOPE: Option<Scope> = None;
}

/// Reading releases, statistics and the compatibility table.
#[derive(Debug)]
pub struct ReleaseReaders;
impl Policy for ReleaseReaders {
    const ROLES: &'static [Role] = &[
        Role::Admin,
        Role::SecurityOfficer,
        Role::Operator,
        Role::Auditor,
    ];
    const SCOPE: Option<Scope> = None;
}

/// Editing the compatibility table.
#[derive(Debug)]
pub struct CompatibilityEditors;
impl Policy for CompatibilityEditors {
    const ROLES: &'static [Role] = &[Role::Admin];
    const SCOPE: Option<Scope> = None;
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Header carrying the signed manifest (base64 of its JSON), on uploads and downloads.
pub const MANIFEST_HEADER: &str = "x-release-manifest";

/// A kernel release on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct KernelReleaseResponse {
    /// Id.
    pub id: Uuid,
    /// Name from the manifest.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// Kernel ABI version.
    pub abi_version: Option<u32>,
    /// Schemes.
    pub schemes: Vec<String>,
    /// AIDs.
    pub aids: Vec<String>,
    /// SHA-256 of the `.wasm`, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Status.
    pub status: KernelStatus,
    /// Channel, once published.
    pub channel: Option<Channel>,
    /// Rollout percentage (0 until published).
    pub rollout_percent: u8,
    /// When published to its channel.
    pub published_at: Option<DateTime<Utc>>,
    /// Conformance result (absent while running).
    pub conformance: Option<ConformanceSummary>,
    /// The signed manifest, as uploaded.
    #[schema(value_type = Object)]
    pub signed_manifest: SignedManifest,
    /// Uploader.
    pub created_by: String,
    /// Upload time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<KernelRelease> for KernelReleaseResponse {
    fn from(release: KernelRelease) -> Self {
        let manifest = release.signed.manifest.clone();
        Self {
            id: release.id,
            name: manifest.name,
            version: manifest.version,
            abi_version: manifest.abi_version,
            schemes: manifest.schemes,
            aids: manifest.aids,
            sha256: manifest.sha256,
            size: manifest.size,
            status: release.status,
            channel: release.channel,
            rollout_percent: release.rollout_percent,
            published_at: release.published_at.map(to_rfc3339),
            conformance: release.conformance,
            signed_manifest: release.signed,
            created_by: release.created_by,
            created_at: to_rfc3339(release.created_at),
            updated_at: to_rfc3339(release.updated_at),
        }
    }
}

/// A kernel for a device or the web demo to download.
#[derive(Debug, Serialize, ToSchema)]
pub struct KernelOffer {
    /// Release id.
    pub release_id: Uuid,
    /// Channel.
    pub channel: Option<Channel>,
    /// Version.
    pub version: String,
    /// ABI version.
    pub abi_version: Option<u32>,
    /// SHA-256 of the `.wasm`, hex: check it, and the signature, before loading.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Signed manifest: verify its Ed25519 signature with the pinned release key.
    #[schema(value_type = Object)]
    pub signed_manifest: SignedManifest,
    /// Where to download the `.wasm` (same authentication as this request).
    pub download_url: String,
}

fn offer(release: KernelRelease, download_url: String) -> KernelOffer {
    KernelOffer {
        release_id: release.id,
        channel: release.channel,
        version: release.signed.manifest.version.clone(),
        abi_version: release.signed.manifest.abi_version,
        sha256: release.signed.manifest.sha256.clone(),
        size: release.signed.manifest.size,
        signed_manifest: release.signed,
        download_url,
    }
}

/// Serves `.wasm` bytes with their digest as the entity tag and the signed manifest.
fn wasm_response(release: &KernelRelease, bytes: Vec<u8>) -> Result<Response, AppError> {
    let manifest = serde_json::to_vec(&release.signed).map_err(anyhow::Error::from)?;
    let mut res = bytes.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/wasm"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", release.signed.manifest.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(value) = HeaderValue::from_str(&B64.encode(manifest)) {
        headers.insert(MANIFEST_HEADER, value);
    }
    Ok(res)
}

/// Reads the signed manifest header.
pub(crate) fn manifest_header(headers: &HeaderMap) -> Result<SignedManifest, AppError> {
    let value = headers
        .get(MANIFEST_HEADER)
        .ok_or_else(|| AppError::MalformedBody("X-Release-Manifest header missing".to_owned()))?;
    let json = value
        .to_str()
        .ok()
        .and_then(|text| B64.decode(text.trim()).ok())
        .ok_or_else(|| AppError::MalformedBody("X-Release-Manifest is not base64".to_owned()))?;
    serde_json::from_slice(&json).map_err(|error| {
        AppError::MalformedBody(format!(
            "X-Release-Manifest is not a signed manifest: {error}"
        ))
    })
}

/// Uploads a kernel `.wasm` with its signed manifest. The server checks the signature, the
/// digest and the ABI version and stores the release as a `DRAFT`; the conformance suite then
/// runs in the sandbox (wasmtime) in the background, after which `GET /api/v1/kernels/{id}`
/// shows it `READY` (publishable) or `REJECTED`, with the report.
#[utoipa::path(post, path = "/api/v1/kernels", tag = "releases",
    params(("X-Release-Manifest" = String, Header,
        description = "base64 of the signed manifest JSON {manifest, key_id, signature}")),
    request_body(content = Vec<u8>, content_type = "application/wasm",
        description = "The kernel .wasm, at most RELEASE_MAX_UPLOAD_BYTES"),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 201, body = KernelReleaseResponse),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody,
            description = "`release_version_exists`"),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`release_signature_invalid`, \
            `release_hash_mismatch`, `abi_version_unsupported`, `release_name_invalid`, ...")))]
pub async fn upload_kernel(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    // The rest of an over-limit body is never read, so the connection cannot carry another
    // request: tell the client to close it.
    let too_large = || {
        let mut res = AppError::PayloadTooLarge.into_response();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    };
    let limit = state.releases.max_upload_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Ok(too_large());
    }
    let signed = manifest_header(&headers)?;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Ok(too_large());
    };
    let release = state
        .releases
        .upload_kernel(auth.principal(), signed, bytes.to_vec(), &ctx)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KernelReleaseResponse::from(release)),
    )
        .into_response())
}

/// List size.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KernelListQuery {
    /// 1–200 (default 50).
    pub limit: Option<i64>,
}

/// Kernel releases, newest first.
#[utoipa::path(get, path = "/api/v1/kernels", tag = "releases", params(KernelListQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = [KernelReleaseResponse])))]
pub async fn list_kernels(
    _auth: Authorized<ReleaseReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<KernelListQuery>,
) -> Result<Json<Vec<KernelReleaseResponse>>, AppError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::field("limit", "1 to 200"));
    }
    let releases = state.releases.kernels(limit).await?;
    Ok(Json(releases.into_iter().map(Into::into).collect()))
}

/// One kernel release with its conformance report.
#[utoipa::path(get, path = "/api/v1/kernels/{release_id}", tag = "releases",
    params(("release_id" = Uuid, Path, description = "release id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = KernelReleaseResponse), (status = 404, body = ErrorBody)))]
pub async fn get_kernel(
    _auth: Authorized<ReleaseReaders>,
    State(state): State<AppState>,
    AppPath(release_id): AppPath<Uuid>,
) -> Result<Json<KernelReleaseResponse>, AppError> {
    Ok(Json(state.releases.kernel(release_id).await?.into()))
}

/// Where to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Channel.
    pub channel: Channel,
    /// Share of the channel's devices offered the release, 1–100. A device is in iff
    /// `u64_be(SHA-256("softpos-rollout-v1\n" ‖ device id ‖ "\n" ‖ release id)[0..8]) % 100`
    /// is below it.
    pub rollout_percent: u8,
}

/// Publishes a release that passed conformance (or changes its rollout).
#[utoipa::path(post, path = "/api/v1/kernels/{release_id}/publish", tag = "releases",
    params(("release_id" = Uuid, Path, description = "release id")),
    request_body = PublishRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KernelReleaseResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`release_not_publishable`, `invalid_release_transition`")))]
pub async fn publish_kernel(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(release_id): AppPath<Uuid>,
    AppJson(req): AppJson<PublishRequest>,
) -> Result<Json<KernelReleaseResponse>, AppError> {
    let release = state
        .releases
        .publish(
            auth.principal(),
            release_id,
            req.channel,
            req.rollout_percent,
            &ctx,
        )
        .await?;
    Ok(Json(release.into()))
}

/// Pauses a published release's rollout: it is offered to nobody until resumed.
#[utoipa::path(post, path = "/api/v1/kernels/{release_id}/pause", tag = "releases",
    params(("release_id" = Uuid, Path, description = "release id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KernelReleaseResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn pause_kernel(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(release_id): AppPath<Uuid>,
) -> Result<Json<KernelReleaseResponse>, AppError> {
    let release = state
        .releases
        .pause(auth.principal(), release_id, &ctx)
        .await?;
    Ok(Json(release.into()))
}

/// Resumes a paused release.
#[utoipa::path(post, path = "/api/v1/kernels/{release_id}/resume", tag = "releases",
    params(("release_id" = Uuid, Path, description = "release id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KernelReleaseResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn resume_kernel(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(release_id): AppPath<Uuid>,
) -> Result<Json<KernelReleaseResponse>, AppError> {
    let release = state
        .releases
        .resume(auth.principal(), release_id, &ctx)
        .await?;
    Ok(Json(release.into()))
}

/// Runs the conformance suite again for a `DRAFT` whose run was lost (the server stopped
/// while it ran); the verdict appears on the release as after an upload.
#[utoipa::path(post, path = "/api/v1/kernels/{release_id}/conformance", tag = "releases",
    params(("release_id" = Uuid, Path, description = "release id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 202, body = KernelReleaseResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`invalid_release_transition`, `conformance_running`")))]
pub async fn rerun_conformance(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(release_id): AppPath<Uuid>,
) -> Result<(StatusCode, Json<KernelReleaseResponse>), AppError> {
    let release = state
        .releases
        .rerun_conformance(auth.principal(), release_id, &ctx)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(release.into())))
}

/// Why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// 1–500 characters, recorded in the audit log.
    pub reason: String,
}

fn reason(req: ReasonRequest) -> Result<String, AppError> {
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::field("reason", "1 to 500 characters"));
    }
    Ok(reason)
}

/// Deprecates a release for good.
#[utoipa::path(post, path = "/api/v1/kernels/{release_id}/deprecate", tag = "releases",
    params(("release_id" = Uuid, Path, description = "release id")),
    request_body = ReasonRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KernelReleaseResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn deprecate_kernel(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(release_id): AppPath<Uuid>,
    AppJson(req): AppJson<ReasonRequest>,
) -> Result<Json<KernelReleaseResponse>, AppError> {
    let release = state
        .releases
        .deprecate(auth.principal(), release_id, reason(req)?, &ctx)
        .await?;
    Ok(Json(release.into()))
}

/// The result of a rollback.
#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackResponse {
    /// The withdrawn release (now `ROLLED_BACK`).
    pub rolled_back: KernelReleaseResponse,
    /// The release the channel serves again.
    pub now_serving: KernelReleaseResponse,
}

fn parse_channel(text: &str) -> Result<Channel, AppError> {
    text.parse()
        .map_err(|()| AppError::field("channel", "stable or beta"))
}

/// Rolls a channel back: its most recently published release is withdrawn and the previous
/// published one serves the channel again.
#[utoipa::path(post, path = "/api/v1/kernel-channels/{channel}/rollback", tag = "releases",
    params(("channel" = String, Path, description = "`stable` or `beta`")),
    request_body = ReasonRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = RollbackResponse),
        (status = 409, body = ErrorBody, description = "`no_previous_release`, `no_release_to_roll_back`")))]
pub async fn rollback_channel(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(channel): AppPath<String>,
    AppJson(req): AppJson<ReasonRequest>,
) -> Result<Json<RollbackResponse>, AppError> {
    let channel = parse_channel(&channel)?;
    let rollback = state
        .releases
        .rollback(auth.principal(), channel, reason(req)?, &ctx)
        .await?;
    Ok(Json(RollbackResponse {
        rolled_back: rollback.rolled_back.into(),
        now_serving: rollback.now_serving.into(),
    }))
}

/// The compatibility table: which kernel ABI versions each terminal version runs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatibilityTable {
    /// One entry per (terminal version, ABI version) that works together.
    pub entries: Vec<CompatEntry>,
}

/// The terminal version × kernel ABI compatibility table. A device is only ever offered a
/// kernel whose ABI is listed for the terminal version it runs.
#[utoipa::path(get, path = "/api/v1/kernel-compatibility", tag = "releases",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = CompatibilityTable)))]
pub async fn get_compatibility(
    _auth: Authorized<ReleaseReaders>,
    State(state): State<AppState>,
) -> Result<Json<CompatibilityTable>, AppError> {
    Ok(Json(CompatibilityTable {
        entries: state.releases.compatibility().await?,
    }))
}

/// Replaces the compatibility table.
#[utoipa::path(post, path = "/api/v1/kernel-compatibility", tag = "releases",
    request_body = CompatibilityTable,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = CompatibilityTable), (status = 422, body = ErrorBody)))]
pub async fn replace_compatibility(
    auth: Authorized<CompatibilityEditors>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<CompatibilityTable>,
) -> Result<Json<CompatibilityTable>, AppError> {
    let entries = state
        .releases
        .replace_compatibility(auth.principal(), req.entries, &ctx)
        .await?;
    Ok(Json(CompatibilityTable { entries }))
}

fn channel_from_query(query: Option<&str>) -> Result<Channel, AppError> {
    let mut channel = Channel::Stable;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("channel", value)) => channel = parse_channel(value)?,
            _ => {
                return Err(AppError::InvalidParameter(
                    "only `channel` is accepted".to_owned(),
                ));
            }
        }
    }
    Ok(channel)
}

/// The kernel this device should run (signed device request; query `channel`, default
/// `stable`). The newest published release of the channel whose rollout includes the device
/// and whose ABI the device's terminal version runs; 404 when there is none. Verify the
/// manifest's signature and the `.wasm`'s SHA-256 before loading it.
#[utoipa::path(get, path = "/api/v1/device/kernel", tag = "device",
    params(("channel" = Option<String>, Query, description = "`stable` (default) or `beta`")),
    security(("device_signature" = [])),
    responses((status = 200, body = KernelOffer), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody,
            description = "`device_not_eligible`")))]
pub async fn device_kernel(
    RawQuery(query): RawQuery,
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<Json<KernelOffer>, AppError> {
    let channel = channel_from_query(query.as_deref())?;
    let release = state
        .releases
        .kernel_for_device(&signed.device, channel)
        .await?
        .ok_or(AppError::NotFound("kernel for this device"))?;
    let url = format!("/api/v1/kernels/{}/wasm", release.id);
    Ok(Json(offer(release, url)))
}

/// Downloads a kernel `.wasm` (signed device request): only a published release in the
/// device's rollout that its terminal version can run; anything else is 404. The signed
/// manifest comes back in `X-Release-Manifest`, the digest as the `ETag`.
#[utoipa::path(get, path = "/api/v1/kernels/{release_id}/wasm", tag = "device",
    params(("release_id" = Uuid, Path, description = "release id")),
    security(("device_signature" = [])),
    responses((status = 200, content_type = "application/wasm", body = Vec<u8>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download_kernel(
    AppPath(release_id): AppPath<Uuid>,
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<Response, AppError> {
    let (release, bytes) = state
        .releases
        .kernel_artifact_for_device(&signed.device, release_id)
        .await?;
    wasm_response(&release, bytes)
}

/// The current public kernel for the web demo (anonymous): the newest `stable` release
/// published to 100 % of devices.
#[utoipa::path(get, path = "/api/v1/public/kernel", tag = "releases",
    responses((status = 200, body = KernelOffer), (status = 404, body = ErrorBody)))]
pub async fn public_kernel(State(state): State<AppState>) -> Result<Json<KernelOffer>, AppError> {
    let release = state.releases.public_kernel().await?;
    Ok(Json(offer(
        release,
        "/api/v1/public/kernel/wasm".to_owned(),
    )))
}

/// The public kernel's `.wasm` (anonymous), with its signed manifest in `X-Release-Manifest`.
#[utoipa::path(get, path = "/api/v1/public/kernel/wasm", tag = "releases",
    responses((status = 200, content_type = "application/wasm", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
pub async fn public_kernel_wasm(State(state): State<AppState>) -> Result<Response, AppError> {
    let (release, bytes) = state.releases.public_kernel_artifact().await?;
    wasm_response(&release, bytes)
}
