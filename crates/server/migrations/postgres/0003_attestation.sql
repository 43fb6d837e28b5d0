-- Attestation verification results stored with each registered device (PostgreSQL).
-- Keep in step with ../sqlite/0003_attestation.sql.
-- Only accepted attestations are stored: a refused registration stores nothing.

CREATE TABLE device_attestations (
    id                          TEXT    NOT NULL CONSTRAINT device_attestations_pkey PRIMARY KEY,
    device_id                   TEXT    NOT NULL CONSTRAINT device_attestations_device_fkey REFERENCES devices (id),
    format                      TEXT    NOT NULL CONSTRAINT device_attestations_format_check
                                        CHECK (format IN ('software', 'android_key')),
    verdict                     TEXT    NOT NULL CONSTRAINT device_attestations_verdict_check
                                        CHECK (verdict IN ('accepted', 'refused')),
    attestation_security_level  TEXT,
    keymint_security_level      TEXT,
    attestation_version         BIGINT,
    -- JSON array of {name, outcome, reason}.
    checks                      TEXT    NOT NULL,
    -- JSON of the parsed KeyDescription (public values only).
    key_description             TEXT,
    verified_at                 BIGINT  NOT NULL,
    created_at                  BIGINT  NOT NULL,
    updated_at                  BIGINT  NOT NULL
);
CREATE INDEX device_attestations_device_idx ON device_attestations (device_id, verified_at);
