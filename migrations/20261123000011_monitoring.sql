-- Monitoring: objects and their conditions, results (raw and hourly
-- rollups), alerts with their history, silences, and the organization's
-- notification channels with their deliveries.

CREATE TYPE monitor_state AS ENUM ('unknown', 'up', 'down');

CREATE TABLE monitors (
    id                      uuid PRIMARY KEY,
    organization_id         uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id              uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    workspace_id            uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    name                    text NOT NULL,
    kind                    text NOT NULL,
    -- protocol::views::monitoring::ProbeSpec
    probe                   jsonb NOT NULL,
    interval_seconds        integer NOT NULL CHECK (interval_seconds >= 1),
    -- [SourceRef]
    sources                 jsonb NOT NULL,
    channels                uuid[] NOT NULL DEFAULT '{}',
    failure_threshold       integer NOT NULL CHECK (failure_threshold >= 1),
    success_threshold       integer NOT NULL CHECK (success_threshold >= 1),
    repeat_interval_seconds integer NOT NULL CHECK (repeat_interval_seconds >= 1),
    public                  boolean NOT NULL DEFAULT false,
    maintenance_opt_in      boolean NOT NULL DEFAULT false,
    paused                  boolean NOT NULL DEFAULT false,
    -- The scheduler claims rows whose turn has come and moves this on in
    -- the same statement, so a run happens once across replicas and a
    -- restart continues where the schedule stood.
    next_run_at             timestamptz NOT NULL,
    -- The latest result over all sources.
    state                   monitor_state NOT NULL DEFAULT 'unknown',
    state_since             timestamptz,
    last_checked_at         timestamptz,
    last_latency_ms         double precision,
    last_error              text,
    created_by              uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE INDEX monitors_due ON monitors (next_run_at) WHERE NOT paused;
CREATE INDEX monitors_workspace ON monitors (workspace_id) WHERE workspace_id IS NOT NULL;

CREATE TABLE monitor_conditions (
    id                   uuid PRIMARY KEY,
    monitor_id           uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    position             integer NOT NULL,
    parameter            text NOT NULL,
    operator             text NOT NULL,
    threshold            double precision NOT NULL,
    for_seconds          integer NOT NULL CHECK (for_seconds >= 0),
    severity             text NOT NULL,
    -- Evaluation state, kept here so any replica can continue it.
    consecutive_breaches integer NOT NULL DEFAULT 0,
    consecutive_passes   integer NOT NULL DEFAULT 0,
    breach_since         timestamptz,
    last_value           double precision,
    UNIQUE (monitor_id, position)
);

-- Raw results, kept 7 days. `source` is the agent's host, NULL for the
-- portal's prober; `values` holds the parameters beyond ok/latency.
CREATE TABLE monitor_results (
    monitor_id  uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    source      uuid,
    ok          boolean NOT NULL,
    latency_ms  real,
    "values"    jsonb,
    error       text
);
CREATE INDEX monitor_results_monitor_at ON monitor_results (monitor_id, at);
CREATE INDEX monitor_results_at ON monitor_results USING brin (at);

-- One row per monitor and hour, kept 90 days.
CREATE TABLE monitor_rollups (
    monitor_id      uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    hour            timestamptz NOT NULL,
    checks          integer NOT NULL,
    failures        integer NOT NULL,
    latency_avg_ms  double precision,
    latency_min_ms  double precision,
    latency_max_ms  double precision,
    PRIMARY KEY (monitor_id, hour)
);
-- Retention's last rolled hour and the expiry of old rollups.
CREATE INDEX monitor_rollups_hour ON monitor_rollups (hour);

CREATE TABLE monitor_silences (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- NULL: every monitor of the project.
    monitor_id      uuid REFERENCES monitors (id) ON DELETE CASCADE,
    comment         text NOT NULL,
    starts_at       timestamptz NOT NULL DEFAULT now(),
    ends_at         timestamptz NOT NULL,
    created_by      uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX monitor_silences_project ON monitor_silences (project_id, ends_at);

CREATE TYPE alert_state AS ENUM ('pending', 'firing', 'resolved');

CREATE TABLE alerts (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    workspace_id      uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    monitor_id        uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    -- NULL once the condition was changed or removed; `summary` keeps how
    -- it read.
    condition_id      uuid REFERENCES monitor_conditions (id) ON DELETE SET NULL,
    summary           text NOT NULL,
    severity          text NOT NULL,
    state             alert_state NOT NULL,
    value             double precision,
    started_at        timestamptz NOT NULL,
    fired_at          timestamptz,
    resolved_at       timestamptz,
    acknowledged_by   uuid REFERENCES accounts (id) ON DELETE SET NULL,
    acknowledged_at   timestamptz,
    ack_comment       text,
    suppressed        text,
    last_notified_at  timestamptz,
    notifications     integer NOT NULL DEFAULT 0
);
-- One open alert per condition: repeated breaches update it.
CREATE UNIQUE INDEX alerts_open ON alerts (condition_id) WHERE state <> 'resolved';
CREATE INDEX alerts_project ON alerts (project_id, started_at DESC);
CREATE INDEX alerts_monitor ON alerts (monitor_id, started_at DESC);
CREATE INDEX alerts_firing ON alerts (last_notified_at) WHERE state = 'firing';

CREATE TABLE alert_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id  uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    detail    text NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

CREATE TABLE notification_channels (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('email', 'webhook', 'slack', 'teams')),
    -- protocol::views::monitoring::ChannelConfig as JSON, sealed.
    config          bytea NOT NULL,
    -- Where it sends without secrets, for lists.
    destination     text NOT NULL,
    created_by      uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

CREATE TYPE notification_state AS ENUM ('pending', 'delivered', 'failed');

CREATE TABLE notifications (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    channel_id       uuid NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    monitor_id       uuid REFERENCES monitors (id) ON DELETE SET NULL,
    -- 'firing', 'resolved', 'repeat', 'test'
    kind             text NOT NULL,
    subject          text NOT NULL,
    -- protocol::views::monitoring::NotificationMessage
    message          jsonb NOT NULL,
    state            notification_state NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_channel ON notifications (channel_id, created_at DESC);
CREATE INDEX notifications_organization ON notifications (organization_id, created_at DESC);
