-- The operator's Kubernetes catalog (versions, management clusters,
-- applications) and what provisioning records on a workspace.

CREATE TABLE kubernetes_versions (
    id          uuid PRIMARY KEY,
    -- "1.33.2": major.minor.patch, without the leading v.
    version     text NOT NULL UNIQUE,
    active      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE management_cluster_kind AS ENUM ('kamaji', 'root');

CREATE TABLE management_clusters (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    kind             management_cluster_kind NOT NULL,
    -- Which compute provider type's workspaces it serves (hetzner_cloud,
    -- ionos_dcd, local, ...); NULL: none, so never picked for Kamaji pools.
    provider_type    text,
    -- Tenant API names live under k8s.<domain>.
    domain           text NOT NULL,
    -- The kubeconfig, sealed with the portal's key.
    kubeconfig       bytea NOT NULL,
    server           text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    -- How many workspaces it may host.
    capacity         integer NOT NULL DEFAULT 100 CHECK (capacity > 0),
    checked_at       timestamptz,
    check_error      text,
    server_version   text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE application_source AS ENUM ('manifests', 'helm');

CREATE TABLE kubernetes_applications (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL,
    version               text NOT NULL,
    source                application_source NOT NULL,
    -- YAML documents for `manifests`.
    manifests             text,
    -- {repository, chart, version, namespace, values} for `helm`.
    chart                 jsonb,
    prerequisite          boolean NOT NULL DEFAULT false,
    position              integer NOT NULL DEFAULT 0,
    install_timeout_secs  integer NOT NULL DEFAULT 300 CHECK (install_timeout_secs > 0),
    active                boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

CREATE TYPE deployment_state AS ENUM ('installing', 'installed', 'failed', 'removed');

CREATE TABLE application_deployments (
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id  uuid NOT NULL REFERENCES kubernetes_applications (id) ON DELETE RESTRICT,
    state           deployment_state NOT NULL DEFAULT 'installing',
    message         text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (workspace_id, application_id)
);

CREATE TYPE workspace_state AS ENUM ('initializing', 'provisioning', 'active', 'failed', 'deleting');
CREATE TYPE control_plane_sizing AS ENUM ('high_available', 'single_node');

ALTER TABLE workspaces
    ALTER COLUMN state DROP DEFAULT,
    ALTER COLUMN state TYPE workspace_state USING state::workspace_state,
    ALTER COLUMN state SET DEFAULT 'initializing',
    ADD COLUMN kubernetes_version_id  uuid REFERENCES kubernetes_versions (id) ON DELETE RESTRICT,
    ADD COLUMN provider_type          text,
    ADD COLUMN ingress                boolean NOT NULL DEFAULT false,
    ADD COLUMN sizing                 control_plane_sizing,
    -- The root-cluster path (namespace k8s-c-…), operators only.
    ADD COLUMN cluster_kind           boolean NOT NULL DEFAULT false,
    ADD COLUMN pinned_cluster_id      uuid REFERENCES management_clusters (id) ON DELETE RESTRICT,
    ADD COLUMN management_cluster_id  uuid REFERENCES management_clusters (id) ON DELETE RESTRICT,
    ADD COLUMN namespace              text,
    ADD COLUMN endpoint               text,
    ADD COLUMN api_address            text,
    ADD COLUMN dns_name               text,
    -- Sealed admin kubeconfig (server rewritten to the endpoint).
    ADD COLUMN kubeconfig             bytea,
    -- The workspace API key: hashed to check it, sealed because the
    -- load-balancer integration in the tenant needs the key itself.
    ADD COLUMN api_key_hash           bytea,
    ADD COLUMN api_key_sealed         bytea,
    ADD COLUMN api_key_prefix         text,
    ADD COLUMN oidc_enabled           boolean NOT NULL DEFAULT true,
    ADD COLUMN session_lifetime_mins  integer NOT NULL DEFAULT 720,
    ADD COLUMN maintenance_weekday    smallint NOT NULL DEFAULT 2 CHECK (maintenance_weekday BETWEEN 0 AND 6),
    ADD COLUMN maintenance_hour       smallint NOT NULL DEFAULT 3 CHECK (maintenance_hour BETWEEN 0 AND 23),
    ADD COLUMN auto_patch             boolean NOT NULL DEFAULT true,
    ADD COLUMN failure_reason         text,
    -- What the drift reconciler last saw in the tenant.
    ADD COLUMN health                 text,
    ADD COLUMN health_checked_at      timestamptz;

CREATE INDEX workspaces_cluster ON workspaces (management_cluster_id) WHERE management_cluster_id IS NOT NULL;
CREATE INDEX workspaces_api_key ON workspaces (api_key_prefix) WHERE api_key_prefix IS NOT NULL;
