-- Transactions, refunds/voids/reversals, DUKPT counters, idempotency and PIN-pad operations
-- (PostgreSQL). Keep in step with ../sqlite/0007_transactions.sql.
-- Cardholder data: only the masked PAN (first 6 / last 4), the last four digits and a keyed
-- HMAC-SHA256 fingerprint are stored; never the PAN, PIN, CVV or track data.

CREATE TABLE transactions (
    id                  TEXT    NOT NULL CONSTRAINT transactions_pkey PRIMARY KEY,
    device_id           TEXT    NOT NULL CONSTRAINT transactions_device_fkey REFERENCES devices (id),
    merchant_id         TEXT    NOT NULL CONSTRAINT transactions_merchant_fkey REFERENCES merchants (id),
    token_id            TEXT    NOT NULL CONSTRAINT transactions_token_key UNIQUE,
    key_set_id          TEXT    NOT NULL,
    ksn                 TEXT    NOT NULL,
    amount_minor        BIGINT  NOT NULL CONSTRAINT transactions_amount_check CHECK (amount_minor > 0),
    currency            TEXT    NOT NULL,
    state               TEXT    NOT NULL CONSTRAINT transactions_state_check
                                CHECK (state IN ('PENDING', 'APPROVED', 'DECLINED', 'FAILED', 'VOIDED', 'REFUNDED', 'REVERSED')),
    approved            BIGINT  NOT NULL DEFAULT 0,
    scheme              TEXT    NOT NULL,
    pan_masked          TEXT    NOT NULL,
    pan_last4           TEXT    NOT NULL,
    pan_fingerprint     TEXT    NOT NULL,
    online_pin          BIGINT  NOT NULL,
    processor           TEXT    NOT NULL,
    response_code       TEXT,
    authorisation_code  TEXT,
    decline_reason      TEXT,
    arpc                TEXT,
    refunded_minor      BIGINT  NOT NULL DEFAULT 0,
    reversal_reason     TEXT,
    reversed_at         BIGINT,
    location            TEXT,
    client_addr         TEXT,
    decided_at          BIGINT,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);
CREATE INDEX transactions_created_idx ON transactions (created_at, id);
CREATE INDEX transactions_device_idx ON transactions (device_id, created_at);
CREATE INDEX transactions_merchant_idx ON transactions (merchant_id, created_at);
CREATE INDEX transactions_state_idx ON transactions (state, created_at);
CREATE INDEX transactions_fingerprint_idx ON transactions (pan_fingerprint);

-- Refunds, voids and reversals of a transaction, oldest first.
CREATE TABLE transaction_events (
    id              TEXT    NOT NULL CONSTRAINT transaction_events_pkey PRIMARY KEY,
    transaction_id  TEXT    NOT NULL CONSTRAINT transaction_events_transaction_fkey REFERENCES transactions (id),
    kind            TEXT    NOT NULL CONSTRAINT transaction_events_kind_check CHECK (kind IN ('refund', 'void', 'reversal')),
    amount_minor    BIGINT  NOT NULL,
    response_code   TEXT,
    actor           TEXT    NOT NULL,
    reason          TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX transaction_events_transaction_idx ON transaction_events (transaction_id, created_at);

-- The highest DUKPT transaction counter accepted per key set: moved only forward, by a
-- compare-and-set, so a replayed or older KSN never pays.
CREATE TABLE dukpt_counters (
    key_set_id      TEXT    NOT NULL CONSTRAINT dukpt_counters_pkey PRIMARY KEY,
    device_id       TEXT    NOT NULL,
    last_counter    BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

-- First answers per idempotency key: status NULL while the first request is in progress.
CREATE TABLE idempotency_keys (
    scope           TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    status          BIGINT,
    response        TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, idem_key)
);

-- PIN-pad mode: each PIN encryption operation a pinpad device reports (never PIN data).
CREATE TABLE pin_operations (
    id              TEXT    NOT NULL CONSTRAINT pin_operations_pkey PRIMARY KEY,
    device_id       TEXT    NOT NULL CONSTRAINT pin_operations_device_fkey REFERENCES devices (id),
    ksn             TEXT    NOT NULL,
    result          TEXT    NOT NULL,
    reference       TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX pin_operations_device_idx ON pin_operations (device_id, created_at);
