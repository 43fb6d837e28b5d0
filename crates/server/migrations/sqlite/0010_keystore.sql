-- One key store (issue 6 §1): token signing keys and webhook secrets are wrapped under the
-- master keyring like every other key, and trusted release public keys live here too.
-- `master_version` NULL marks a value still wrapped the old way (under a key derived from
-- JWT_SECRET); the server re-wraps those at start (`service::keys::legacy`) and never
-- writes one again.
ALTER TABLE token_signing_keys ADD COLUMN master_version INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN master_version INTEGER;

-- Trusted release (Ed25519) public keys. Not secret, but their integrity is: the key is kept
-- sealed under the master key, so a row written by anyone without it does not verify and is
-- never trusted. `fingerprint` (SHA-256 of the key, hex) is for display.
CREATE TABLE release_keys (
    key_id          TEXT    NOT NULL CONSTRAINT release_keys_pkey PRIMARY KEY,
    wrapped         TEXT    NOT NULL,
    master_version  INTEGER NOT NULL,
    fingerprint     TEXT    NOT NULL,
    state           TEXT    NOT NULL CONSTRAINT release_keys_state_check
                            CHECK (state IN ('ACTIVE', 'RETIRED')),
    origin          TEXT    NOT NULL CONSTRAINT release_keys_origin_check
                            CHECK (origin IN ('config', 'api')),
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    retired_at      BIGINT,
    updated_at      BIGINT  NOT NULL
);
