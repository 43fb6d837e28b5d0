-- Key custody and remote key injection (PostgreSQL). Keep in step with ../sqlite/0006_keys.sql.
-- No clear key material is ever stored: `wrapped` columns hold AES-256-GCM ciphertexts under
-- the master key version in `master_version`, bound to the row by the AAD (see service::keys::store).

-- BDKs, zone PIN keys and key-encryption keys.
CREATE TABLE stored_keys (
    id              TEXT    NOT NULL CONSTRAINT stored_keys_pkey PRIMARY KEY,
    name            TEXT    NOT NULL,
    usage           TEXT    NOT NULL CONSTRAINT stored_keys_usage_check CHECK (usage IN ('bdk', 'zpk', 'kek')),
    algorithm       TEXT    NOT NULL CONSTRAINT stored_keys_algorithm_check
                            CHECK (algorithm IN ('tdes2', 'tdes3', 'aes128', 'aes192', 'aes256')),
    state           TEXT    NOT NULL CONSTRAINT stored_keys_state_check
                            CHECK (state IN ('PENDING', 'READY', 'ACTIVE', 'RETIRED')),
    origin          TEXT    NOT NULL CONSTRAINT stored_keys_origin_check CHECK (origin IN ('generated', 'components', 'tr31')),
    kcv             TEXT,
    -- BDK: the DUKPT key set id (AES: 4-byte BDK id; TDES: 5-byte key set identifier), hex.
    dukpt_key_id    TEXT,
    -- ZPK: the processor connection and the PIN block format it expects (0 or 4).
    processor       TEXT,
    pin_format      INTEGER,
    wrapped         TEXT,
    master_version  INTEGER,
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    activated_at    BIGINT,
    retired_at      BIGINT,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX stored_keys_usage_idx ON stored_keys (usage, state, created_at);

-- Dual-control import ceremonies: one per key imported by components.
CREATE TABLE key_ceremonies (
    id              TEXT    NOT NULL CONSTRAINT key_ceremonies_pkey PRIMARY KEY,
    key_id          TEXT    NOT NULL CONSTRAINT key_ceremonies_key_fkey REFERENCES stored_keys (id),
    state           TEXT    NOT NULL CONSTRAINT key_ceremonies_state_check
                            CHECK (state IN ('OPEN', 'COMPLETE', 'CONFIRMED')),
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE key_ceremony_custodians (
    ceremony_id     TEXT    NOT NULL CONSTRAINT key_ceremony_custodians_ceremony_fkey REFERENCES key_ceremonies (id),
    user_id         TEXT    NOT NULL CONSTRAINT key_ceremony_custodians_user_fkey REFERENCES users (id),
    position        INTEGER NOT NULL,
    component_kcv   TEXT,
    -- Wrapped until the ceremony is confirmed, then erased.
    wrapped         TEXT,
    master_version  INTEGER,
    submitted_at    BIGINT,
    CONSTRAINT key_ceremony_custodians_pkey PRIMARY KEY (ceremony_id, user_id)
);

-- Key profile per device mode: which DUKPT variant and BDK new key sets use.
CREATE TABLE key_profiles (
    mode            TEXT    NOT NULL CONSTRAINT key_profiles_pkey PRIMARY KEY
                            CONSTRAINT key_profiles_mode_check CHECK (mode IN ('softpos', 'pinpad')),
    scheme          TEXT    NOT NULL CONSTRAINT key_profiles_scheme_check CHECK (scheme IN ('aes128', 'tdes')),
    -- A specific BDK, or NULL for the newest active BDK of the scheme's family.
    bdk_id          TEXT    CONSTRAINT key_profiles_bdk_fkey REFERENCES stored_keys (id),
    -- Rotate a key set once its transaction counter passes this value.
    rotate_after    BIGINT  NOT NULL,
    updated_by      TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL
);
INSERT INTO key_profiles (mode, scheme, bdk_id, rotate_after, updated_by, updated_at)
VALUES ('softpos', 'aes128', NULL, 900000, 'system:migration', 0),
       ('pinpad', 'aes128', NULL, 900000, 'system:migration', 0);

-- Key sets injected into devices. Revoking a device destroys the wrapped initial key and
-- leaves the row as a tombstone (trigger below, in the same statement as the revocation).
CREATE TABLE device_key_sets (
    id              TEXT    NOT NULL CONSTRAINT device_key_sets_pkey PRIMARY KEY,
    device_id       TEXT    NOT NULL CONSTRAINT device_key_sets_device_fkey REFERENCES devices (id),
    version         INTEGER NOT NULL,
    scheme          TEXT    NOT NULL CONSTRAINT device_key_sets_scheme_check CHECK (scheme IN ('aes128', 'tdes')),
    bdk_id          TEXT    NOT NULL CONSTRAINT device_key_sets_bdk_fkey REFERENCES stored_keys (id),
    initial_key_id  TEXT    NOT NULL CONSTRAINT device_key_sets_initial_key_id_key UNIQUE,
    kcv             TEXT    NOT NULL,
    state           TEXT    NOT NULL CONSTRAINT device_key_sets_state_check
                            CHECK (state IN ('ISSUED', 'ACTIVE', 'SUPERSEDED', 'DESTROYED')),
    wrapped         TEXT,
    master_version  INTEGER,
    rotation_requested_at BIGINT,
    created_at      BIGINT  NOT NULL,
    confirmed_at    BIGINT,
    destroyed_at    BIGINT,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT device_key_sets_version_key UNIQUE (device_id, version)
);
CREATE INDEX device_key_sets_device_idx ON device_key_sets (device_id, state);

CREATE FUNCTION device_key_sets_destroy_on_revoke() RETURNS trigger AS $$
BEGIN
    UPDATE device_key_sets
       SET state = 'DESTROYED', wrapped = NULL, master_version = NULL,
           destroyed_at = NEW.updated_at, updated_at = NEW.updated_at
     WHERE device_id = NEW.id AND state <> 'DESTROYED';
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER device_key_sets_destroy_on_revoke
AFTER UPDATE OF state ON devices
FOR EACH ROW WHEN (NEW.state = 'REVOKED')
EXECUTE FUNCTION device_key_sets_destroy_on_revoke();
