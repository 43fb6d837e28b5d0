-- SUNBAY SoftPOS, initial schema (SQLite). Keep in step with ../postgres/0001_init.sql.
-- Ids are TEXT UUIDs, times BIGINT Unix milliseconds (UTC), constraints named on purpose.

CREATE TABLE users (
    id                  TEXT    NOT NULL CONSTRAINT users_pkey PRIMARY KEY,
    username            TEXT    NOT NULL CONSTRAINT users_username_key UNIQUE,
    password_hash       TEXT    NOT NULL,
    role                TEXT    NOT NULL CONSTRAINT users_role_check
                                CHECK (role IN ('admin', 'security_officer', 'operator', 'auditor')),
    disabled_at         BIGINT,
    password_changed_at BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id              TEXT    NOT NULL CONSTRAINT sessions_pkey PRIMARY KEY,
    user_id         TEXT    NOT NULL CONSTRAINT sessions_user_fkey REFERENCES users (id),
    client_addr     TEXT,
    user_agent      TEXT,
    last_used_at    BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at);

-- Refresh tokens are stored as SHA-256 hashes; a row is spent once `used_at` is set.
CREATE TABLE refresh_tokens (
    token_hash  TEXT    NOT NULL CONSTRAINT refresh_tokens_pkey PRIMARY KEY,
    session_id  TEXT    NOT NULL CONSTRAINT refresh_tokens_session_fkey REFERENCES sessions (id),
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id            TEXT    NOT NULL CONSTRAINT api_keys_pkey PRIMARY KEY,
    name          TEXT    NOT NULL,
    prefix        TEXT    NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    key_hash      TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    created_by    TEXT    NOT NULL CONSTRAINT api_keys_created_by_fkey REFERENCES users (id),
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE merchants (
    id          TEXT    NOT NULL CONSTRAINT merchants_pkey PRIMARY KEY,
    name        TEXT    NOT NULL CONSTRAINT merchants_name_key UNIQUE,
    country     TEXT    NOT NULL,
    mcc         TEXT    NOT NULL,
    status      TEXT    NOT NULL CONSTRAINT merchants_status_check
                        CHECK (status IN ('active', 'suspended', 'closed')),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX merchants_created_idx ON merchants (created_at, id);

-- Append-only, hash-chained. `seq` is the chain position: the primary key makes two
-- writers that read the same head collide instead of forking the chain.
CREATE TABLE audit_log (
    seq          BIGINT  NOT NULL CONSTRAINT audit_log_pkey PRIMARY KEY,
    occurred_at  BIGINT  NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    target       TEXT,
    reason       TEXT,
    request_id   TEXT,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL CONSTRAINT audit_log_hash_key UNIQUE,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);

-- Defence in depth: the application never updates or deletes audit rows. Someone with
-- direct database access can drop these triggers; the hash chain then exposes the change.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
