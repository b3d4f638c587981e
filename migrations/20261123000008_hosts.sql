-- Hosts (machines in a workspace), the agent tokens they connect with,
-- scaling groups, shell sessions and published agent releases.

CREATE TYPE host_state AS ENUM ('provisioning', 'bootstrapping', 'joining', 'running', 'error', 'deleting');
CREATE TYPE power_state AS ENUM ('on', 'off');

-- How many hosts an organization may have; operators raise it.
ALTER TABLE organizations ADD COLUMN host_limit integer NOT NULL DEFAULT 20 CHECK (host_limit >= 0);

CREATE TABLE scaling_groups (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text NOT NULL,
    profile_id    uuid NOT NULL REFERENCES compute_profiles (id),
    desired       integer NOT NULL CHECK (desired >= 0 AND desired <= 100),
    -- What the reconciler last did or could not do.
    status        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);

CREATE TABLE hosts (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    hostname          text NOT NULL,
    profile_id        uuid NOT NULL REFERENCES compute_profiles (id),
    provider_id       uuid REFERENCES compute_providers (id) ON DELETE SET NULL,
    scaling_group_id  uuid REFERENCES scaling_groups (id) ON DELETE SET NULL,
    -- The provider's id for the server, once it has one.
    server_id         text,
    state             host_state NOT NULL DEFAULT 'provisioning',
    error             text,
    power             power_state NOT NULL DEFAULT 'on',
    public_ipv4       text,
    private_ipv4      text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    -- The agent token the order bootstraps with, sealed, until the agent
    -- has connected (a retried step must hand the server the same token).
    bootstrap_sealed  bytea,
    -- Last heartbeat's facts (protocol::agent::HostFacts).
    facts             jsonb,
    agent_version     text,
    online            boolean NOT NULL DEFAULT false,
    last_seen_at      timestamptz,
    created_by        uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, hostname)
);
CREATE INDEX hosts_organization ON hosts (organization_id);
CREATE INDEX hosts_scaling_group ON hosts (scaling_group_id) WHERE scaling_group_id IS NOT NULL;
CREATE INDEX hosts_online ON hosts (last_seen_at) WHERE online;

-- Workspace-scoped bearer secrets the agent authenticates with; only the
-- SHA-256 digest is kept.
CREATE TABLE agent_tokens (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    host_id       uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    digest        bytea NOT NULL UNIQUE,
    prefix        text NOT NULL,
    created_by    uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    revoked_by    uuid REFERENCES accounts (id) ON DELETE SET NULL
);
CREATE INDEX agent_tokens_host ON agent_tokens (host_id);

CREATE TABLE shell_sessions (
    id               uuid PRIMARY KEY,
    host_id          uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    account_id       uuid REFERENCES accounts (id) ON DELETE SET NULL,
    account_email    text NOT NULL,
    reconnect_digest bytea NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    attached_at      timestamptz,
    detached_at      timestamptz,
    ended_at         timestamptz,
    end_reason       text,
    exit_code        integer,
    bytes_in         bigint NOT NULL DEFAULT 0,
    bytes_out        bigint NOT NULL DEFAULT 0
);
CREATE INDEX shell_sessions_active ON shell_sessions (host_id) WHERE ended_at IS NULL;

-- Agent binaries operators publish; hosts update to the current one.
CREATE TABLE agent_releases (
    version       text PRIMARY KEY,
    sha256        text NOT NULL,
    content       bytea NOT NULL,
    published_by  uuid REFERENCES accounts (id) ON DELETE SET NULL,
    published_at  timestamptz NOT NULL DEFAULT now()
);
