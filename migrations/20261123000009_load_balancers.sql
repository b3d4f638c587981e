-- Load balancers: the product object at project scope (workspace_id NULL)
-- or workspace scope, and what the reconciler last saw at its backend.

CREATE TYPE load_balancer_state AS ENUM ('pending', 'active', 'error', 'deleting');

CREATE TABLE load_balancers (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    workspace_id     uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    name             text NOT NULL,
    -- Chosen at creation: 'local' or 'hetzner_cloud' (then provider_id).
    backend          text NOT NULL CHECK (backend IN ('local', 'hetzner_cloud')),
    provider_id      uuid REFERENCES compute_providers (id) ON DELETE SET NULL,
    -- The desired state (protocol::views::load_balancers types as JSON).
    listeners        jsonb NOT NULL,
    targets          jsonb NOT NULL,
    algorithm        jsonb NOT NULL,
    health           jsonb NOT NULL,
    -- `namespace/name` of the Service, for those made by the in-cluster API.
    service          text,
    -- What the backend reported.
    state            load_balancer_state NOT NULL DEFAULT 'pending',
    backend_ref      text,
    address          text,
    target_status    jsonb NOT NULL DEFAULT '[]',
    drift            text,
    drift_at         timestamptz,
    last_error       text,
    reconciled_at    timestamptz,
    created_by       uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE INDEX load_balancers_workspace ON load_balancers (workspace_id) WHERE workspace_id IS NOT NULL;
CREATE UNIQUE INDEX load_balancers_service ON load_balancers (workspace_id, service)
    WHERE service IS NOT NULL;
