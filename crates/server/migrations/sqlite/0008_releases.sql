-- Signed kernel and terminal-software releases, push tasks, device software state and the
-- terminal × kernel ABI compatibility table (SQLite). Keep in step with ../postgres/0008_releases.sql.

-- Artifact bytes, keyed by their SHA-256 (content addressed: one copy per distinct file).
CREATE TABLE release_artifacts (
    sha256      TEXT    NOT NULL CONSTRAINT release_artifacts_pkey PRIMARY KEY,
    content     BLOB    NOT NULL,
    size        BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE kernel_releases (
    id                  TEXT    NOT NULL CONSTRAINT kernel_releases_pkey PRIMARY KEY,
    name                TEXT    NOT NULL,
    version             TEXT    NOT NULL,
    abi_version         BIGINT  NOT NULL,
    -- The signed manifest as uploaded (JSON of release_manifest::SignedManifest).
    signed_manifest     TEXT    NOT NULL,
    sha256              TEXT    NOT NULL CONSTRAINT kernel_releases_artifact_fkey REFERENCES release_artifacts (sha256),
    size                BIGINT  NOT NULL,
    status              TEXT    NOT NULL CONSTRAINT kernel_releases_status_check
                                CHECK (status IN ('DRAFT', 'READY', 'REJECTED', 'PUBLISHED', 'PAUSED', 'ROLLED_BACK', 'DEPRECATED')),
    conformance_report  TEXT,
    channel             TEXT    CONSTRAINT kernel_releases_channel_check CHECK (channel IN ('stable', 'beta')),
    rollout_percent     BIGINT  NOT NULL CONSTRAINT kernel_releases_rollout_check CHECK (rollout_percent BETWEEN 0 AND 100),
    published_at        BIGINT,
    created_by          TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    CONSTRAINT kernel_releases_name_version_key UNIQUE (name, version)
);
CREATE INDEX kernel_releases_channel_idx ON kernel_releases (channel, status, published_at);

CREATE TABLE terminal_releases (
    id                  TEXT    NOT NULL CONSTRAINT terminal_releases_pkey PRIMARY KEY,
    name                TEXT    NOT NULL,
    version             TEXT    NOT NULL,
    signed_manifest     TEXT    NOT NULL,
    sha256              TEXT    NOT NULL,
    size                BIGINT  NOT NULL,
    update_type         TEXT    NOT NULL CONSTRAINT terminal_releases_update_type_check
                                CHECK (update_type IN ('mandatory', 'optional', 'security')),
    min_os_version      TEXT    NOT NULL,
    -- Target device groups, JSON: {"models":[...],"merchant_ids":[...],"modes":[...]}; an
    -- empty list matches every device.
    targets             TEXT    NOT NULL,
    release_notes       TEXT    NOT NULL,
    status              TEXT    NOT NULL CONSTRAINT terminal_releases_status_check
                                CHECK (status IN ('RELEASED', 'DEPRECATED')),
    created_by          TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    CONSTRAINT terminal_releases_name_version_key UNIQUE (name, version)
);

CREATE TABLE terminal_update_tasks (
    id          TEXT    NOT NULL CONSTRAINT terminal_update_tasks_pkey PRIMARY KEY,
    release_id  TEXT    NOT NULL CONSTRAINT terminal_update_tasks_release_fkey REFERENCES terminal_releases (id),
    device_id   TEXT    NOT NULL CONSTRAINT terminal_update_tasks_device_fkey REFERENCES devices (id),
    state       TEXT    NOT NULL CONSTRAINT terminal_update_tasks_state_check
                        CHECK (state IN ('pending', 'delivered', 'installed', 'failed')),
    detail      TEXT,
    delivered_at BIGINT,
    finished_at BIGINT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    CONSTRAINT terminal_update_tasks_release_device_key UNIQUE (release_id, device_id)
);
CREATE INDEX terminal_update_tasks_device_idx ON terminal_update_tasks (device_id, state);

-- What each device last reported at check-in.
CREATE TABLE device_software (
    device_id           TEXT    NOT NULL CONSTRAINT device_software_pkey PRIMARY KEY
                                CONSTRAINT device_software_device_fkey REFERENCES devices (id),
    terminal_version    TEXT    NOT NULL,
    kernel_version      TEXT,
    last_check_in       BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);

-- A row means: terminal software `terminal_version` can run kernels of `abi_version`.
CREATE TABLE terminal_kernel_compat (
    terminal_version    TEXT    NOT NULL,
    abi_version         BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    CONSTRAINT terminal_kernel_compat_pkey PRIMARY KEY (terminal_version, abi_version)
);
