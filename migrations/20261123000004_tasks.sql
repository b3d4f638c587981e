-- System tasks: durable sequences of named steps, run by workers inside the
-- portal under renewable leases, and the runs of periodic reconcilers.

CREATE TYPE task_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');
CREATE TYPE step_state AS ENUM ('pending', 'running', 'succeeded', 'failed', 'cancelled');

CREATE TABLE tasks (
    id                   uuid PRIMARY KEY,
    kind                 text NOT NULL,
    title                text NOT NULL,
    input                jsonb NOT NULL,
    state                task_state NOT NULL DEFAULT 'queued',
    -- What the task works on: decides who may see and cancel it.
    organization_id      uuid REFERENCES organizations (id) ON DELETE SET NULL,
    workspace_id         uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    created_by           uuid REFERENCES accounts (id) ON DELETE SET NULL,
    -- Not before: new tasks now, retries after their backoff.
    run_at               timestamptz NOT NULL DEFAULT now(),
    -- Which process runs it, until when; a lapsed lease may be taken over.
    lease_owner          text,
    lease_expires_at     timestamptz,
    claims               integer NOT NULL DEFAULT 0,
    cancel_requested_at  timestamptz,
    cancelled_by         uuid REFERENCES accounts (id) ON DELETE SET NULL,
    error                text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz
);
CREATE INDEX tasks_due ON tasks (run_at, id) WHERE state = 'queued';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_workspace ON tasks (workspace_id, created_at DESC) WHERE workspace_id IS NOT NULL;
CREATE INDEX tasks_recent ON tasks (created_at DESC);

CREATE TABLE task_steps (
    task_id      uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    name         text NOT NULL,
    state        step_state NOT NULL DEFAULT 'pending',
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    timeout_ms   bigint NOT NULL,
    backoff_ms   bigint NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    -- The latest progress note or error.
    message      text,
    -- What later steps may need (e.g. the id of a server a step created).
    output       jsonb,
    PRIMARY KEY (task_id, position)
);

-- Each run of a periodic reconciler, by whichever replica held its lock.
CREATE TABLE reconciler_runs (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    replica      text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    outcome      text NOT NULL,
    message      text
);
CREATE INDEX reconciler_runs_recent ON reconciler_runs (name, started_at DESC);

-- The diagnostic task's footprint: one row per step execution (to count
-- them), and the step's idempotent effect (to prove it happens once).
CREATE TABLE diagnostic_runs (
    task_id   uuid NOT NULL,
    step      text NOT NULL,
    replica   text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX diagnostic_runs_task ON diagnostic_runs (task_id);
CREATE TABLE diagnostic_effects (
    task_id   uuid NOT NULL,
    step      text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, step)
);
