-- Health reports under a versioned security policy, threat events with their incident
-- notes, and the transaction observations the behaviour rules read (PostgreSQL).
-- Keep in step with ../sqlite/0004_health_threats.sql.

-- One row per policy version; `body` is the whole policy as JSON. Versions are never
-- changed or deleted: a new version is a new row.
CREATE TABLE security_policies (
    version     BIGINT  NOT NULL CONSTRAINT security_policies_pkey PRIMARY KEY,
    body        TEXT    NOT NULL,
    comment     TEXT,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE health_reports (
    id                    TEXT    NOT NULL CONSTRAINT health_reports_pkey PRIMARY KEY,
    device_id             TEXT    NOT NULL CONSTRAINT health_reports_device_fkey REFERENCES devices (id),
    policy_version        BIGINT  NOT NULL CONSTRAINT health_reports_policy_fkey REFERENCES security_policies (version),
    score                 BIGINT  NOT NULL CONSTRAINT health_reports_score_check CHECK (score BETWEEN 0 AND 100),
    verdict               TEXT    NOT NULL CONSTRAINT health_reports_verdict_check CHECK (verdict IN ('pass', 'fail')),
    failed_checks         TEXT    NOT NULL,
    report                TEXT    NOT NULL,
    clock_skew_ms         BIGINT  NOT NULL,
    amount_ceiling_minor  BIGINT,
    received_at           BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE INDEX health_reports_device_idx ON health_reports (device_id, received_at);
CREATE INDEX health_reports_received_idx ON health_reports (received_at);

-- One row per failed check of a report, so fleet counts per check are plain GROUP BYs.
CREATE TABLE health_report_failures (
    report_id    TEXT    NOT NULL CONSTRAINT health_report_failures_report_fkey REFERENCES health_reports (id),
    check_name   TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    received_at  BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    CONSTRAINT health_report_failures_pkey PRIMARY KEY (report_id, check_name)
);
CREATE INDEX health_report_failures_received_idx ON health_report_failures (received_at);

CREATE TABLE threat_events (
    id              TEXT    NOT NULL CONSTRAINT threat_events_pkey PRIMARY KEY,
    device_id       TEXT    NOT NULL CONSTRAINT threat_events_device_fkey REFERENCES devices (id),
    kind            TEXT    NOT NULL,
    severity        TEXT    NOT NULL CONSTRAINT threat_events_severity_check
                            CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    -- 1 (low) to 4 (critical), for ordering.
    severity_rank   BIGINT  NOT NULL,
    evidence        TEXT    NOT NULL,
    state           TEXT    NOT NULL CONSTRAINT threat_events_state_check
                            CHECK (state IN ('open', 'acknowledged', 'resolved', 'false_positive')),
    action          TEXT    NOT NULL CONSTRAINT threat_events_action_check
                            CHECK (action IN ('record', 'alert', 'block_transactions', 'suspend', 'revoke')),
    action_outcome  TEXT    NOT NULL,
    policy_version  BIGINT  NOT NULL,
    observed_at     BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX threat_events_device_idx ON threat_events (device_id, created_at);
CREATE INDEX threat_events_created_idx ON threat_events (created_at);
CREATE INDEX threat_events_state_idx ON threat_events (state, device_id);

-- The incident workflow: every state change with its actor and note.
CREATE TABLE threat_event_notes (
    id          TEXT    NOT NULL CONSTRAINT threat_event_notes_pkey PRIMARY KEY,
    threat_id   TEXT    NOT NULL CONSTRAINT threat_event_notes_threat_fkey REFERENCES threat_events (id),
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    request_id  TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX threat_event_notes_threat_idx ON threat_event_notes (threat_id, created_at);

-- Finished transactions as payments report them; the behaviour rules read these.
CREATE TABLE transaction_observations (
    id              TEXT    NOT NULL CONSTRAINT transaction_observations_pkey PRIMARY KEY,
    device_id       TEXT    NOT NULL CONSTRAINT transaction_observations_device_fkey REFERENCES devices (id),
    transaction_id  TEXT    NOT NULL CONSTRAINT transaction_observations_transaction_key UNIQUE,
    outcome         TEXT    NOT NULL CONSTRAINT transaction_observations_outcome_check
                            CHECK (outcome IN ('approved', 'declined')),
    amount_minor    BIGINT  NOT NULL,
    currency        TEXT    NOT NULL,
    -- Millionths of a degree (about 0.1 m): integers are exact on both backends.
    latitude_e6     BIGINT,
    longitude_e6    BIGINT,
    observed_at     BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX transaction_observations_device_idx ON transaction_observations (device_id, observed_at);
