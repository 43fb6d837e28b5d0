-- Follow-ups that need no instance's memory, reserved refunds and idempotency leases
-- (SQLite). Keep in step with ../postgres/0009_payment_followups.sql.

-- The processor's reference of an approval: refunds, voids and reversals name the approval by
-- it (with the authorisation code and amounts), never by the PAN.
ALTER TABLE transactions ADD COLUMN processor_reference TEXT;
-- Minor units held by follow-ups sent to the processor and not yet settled or released: a
-- refund is reserved by a conditional UPDATE (refunded + reserved + amount <= captured) before
-- the processor is called, so concurrent refunds never exceed the captured amount.
ALTER TABLE transactions ADD COLUMN reserved_minor BIGINT NOT NULL DEFAULT 0;

-- Every refund, void and reversal sent to the processor, from its reservation to its
-- settlement (RESERVED -> SETTLED | RELEASED). One per idempotency key, so a retry after a lost
-- answer resends the same follow-up instead of reserving again; a RESERVED row is a follow-up
-- whose outcome is not known yet and is never lost.
CREATE TABLE follow_up_attempts (
    id              TEXT    NOT NULL CONSTRAINT follow_up_attempts_pkey PRIMARY KEY,
    transaction_id  TEXT    NOT NULL CONSTRAINT follow_up_attempts_transaction_fkey REFERENCES transactions (id),
    kind            TEXT    NOT NULL CONSTRAINT follow_up_attempts_kind_check CHECK (kind IN ('refund', 'void', 'reversal')),
    idem_scope      TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    amount_minor    BIGINT  NOT NULL,
    state           TEXT    NOT NULL CONSTRAINT follow_up_attempts_state_check CHECK (state IN ('RESERVED', 'SETTLED', 'RELEASED')),
    response_code   TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT follow_up_attempts_idem_key UNIQUE (idem_scope, idem_key)
);
CREATE INDEX follow_up_attempts_transaction_idx ON follow_up_attempts (transaction_id, created_at);

-- Idempotency leases: the request that claims a key holds it until lease_expires_at (Unix ms);
-- a retry may take over an unanswered key whose lease expired (its worker died), by one
-- conditional UPDATE on the lease owner it saw, so exactly one retry proceeds.
ALTER TABLE idempotency_keys ADD COLUMN lease_owner TEXT;
ALTER TABLE idempotency_keys ADD COLUMN lease_expires_at BIGINT;
-- What the first request created (a sale's transaction id), so a takeover finishes it
-- instead of running the request again.
ALTER TABLE idempotency_keys ADD COLUMN resource_id TEXT;
