-- Devices and their state history (SQLite). Keep in step with ../postgres/0002_devices.sql.

CREATE TABLE devices (
    id                  TEXT    NOT NULL CONSTRAINT devices_pkey PRIMARY KEY,
    merchant_id         TEXT    NOT NULL CONSTRAINT devices_merchant_fkey REFERENCES merchants (id),
    public_key          TEXT    NOT NULL,
    -- Identity is the device key: one device per key, never per IMEI or serial.
    key_fingerprint     TEXT    NOT NULL CONSTRAINT devices_key_fingerprint_key UNIQUE,
    mode                TEXT    NOT NULL CONSTRAINT devices_mode_check CHECK (mode IN ('softpos', 'pinpad')),
    state               TEXT    NOT NULL CONSTRAINT devices_state_check
                                CHECK (state IN ('REGISTERED', 'APPROVED', 'ACTIVE', 'SUSPENDED', 'REVOKED')),
    model               TEXT    NOT NULL,
    facts               TEXT    NOT NULL,
    attestation_format  TEXT    NOT NULL,
    attestation_notes   TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);
CREATE INDEX devices_state_idx ON devices (state, created_at);
CREATE INDEX devices_merchant_idx ON devices (merchant_id, created_at);

CREATE TABLE device_state_changes (
    id          TEXT    NOT NULL CONSTRAINT device_state_changes_pkey PRIMARY KEY,
    device_id   TEXT    NOT NULL CONSTRAINT device_state_changes_device_fkey REFERENCES devices (id),
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    reason      TEXT,
    request_id  TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX device_state_changes_device_idx ON device_state_changes (device_id, created_at);
