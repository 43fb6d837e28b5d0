-- Transaction Tokens, their signing keys, and outbound webhooks (SQLite).
-- Keep in step with ../postgres/0005_tokens_events.sql.

-- ES256 signing keys. The private scalar is stored only wrapped (AES-256-GCM, AAD = kid).
-- A key signs while `retired_at` is NULL; after rotation it stays published in the JWKS
-- until `publish_until`, when every token it signed has expired.
CREATE TABLE token_signing_keys (
    kid             TEXT    NOT NULL CONSTRAINT token_signing_keys_pkey PRIMARY KEY,
    public_key      TEXT    NOT NULL,
    private_wrapped TEXT    NOT NULL,
    retired_at      BIGINT,
    publish_until   BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX token_signing_keys_created_idx ON token_signing_keys (created_at, kid);

-- One row per issued token: never the token itself, only its SHA-256 and its claims.
-- `consumed_at` is set once by a conditional UPDATE: the durable single-use authority.
CREATE TABLE tokens (
    jti          TEXT    NOT NULL CONSTRAINT tokens_pkey PRIMARY KEY,
    device_id    TEXT    NOT NULL CONSTRAINT tokens_device_fkey REFERENCES devices (id),
    kid          TEXT    NOT NULL CONSTRAINT tokens_kid_fkey REFERENCES token_signing_keys (kid),
    token_hash   TEXT    NOT NULL,
    claims       TEXT    NOT NULL,
    issued_at    BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    consumed_at  BIGINT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX tokens_device_idx ON tokens (device_id, issued_at);

-- Outbound webhook endpoints. The HMAC secret is stored only wrapped (AAD = id).
CREATE TABLE webhook_endpoints (
    id              TEXT    NOT NULL CONSTRAINT webhook_endpoints_pkey PRIMARY KEY,
    url             TEXT    NOT NULL,
    event_kinds     TEXT    NOT NULL,
    description     TEXT,
    secret_wrapped  TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    deleted_at      BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX webhook_endpoints_created_idx ON webhook_endpoints (created_at, id);

-- One row per delivery attempt.
CREATE TABLE webhook_deliveries (
    id           TEXT    NOT NULL CONSTRAINT webhook_deliveries_pkey PRIMARY KEY,
    endpoint_id  TEXT    NOT NULL CONSTRAINT webhook_deliveries_endpoint_fkey REFERENCES webhook_endpoints (id),
    event_id     TEXT    NOT NULL,
    event_kind   TEXT    NOT NULL,
    attempt      BIGINT  NOT NULL,
    outcome      TEXT    NOT NULL CONSTRAINT webhook_deliveries_outcome_check
                         CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    http_status  BIGINT,
    latency_ms   BIGINT  NOT NULL,
    error        TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at);
