-- Managed networks: the address plan a workspace gets when the portal is
-- configured with a pool, made by its own system task.

CREATE TYPE network_state AS ENUM ('creating', 'ready');

CREATE TABLE networks (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL UNIQUE REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Which block of the pool: the network is pool + slot * block size.
    slot          integer NOT NULL UNIQUE CHECK (slot >= 0),
    cidr          text NOT NULL UNIQUE,
    state         network_state NOT NULL DEFAULT 'creating',
    created_at    timestamptz NOT NULL DEFAULT now()
);
