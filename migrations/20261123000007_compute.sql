-- Compute providers (where servers come from) and compute profiles (the
-- server SKUs customers order).

CREATE TYPE provider_kind AS ENUM ('hetzner_cloud', 'hetzner_robot', 'ionos_dcd', 'local');

CREATE TABLE compute_providers (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    kind             provider_kind NOT NULL,
    -- Non-secret settings: base URL, location, datacenter id, user name.
    settings         jsonb NOT NULL DEFAULT '{}',
    -- Token or password, sealed with the portal's key.
    credentials      bytea NOT NULL,
    -- NULL: a pool provider; otherwise the organization that claimed it.
    organization_id  uuid REFERENCES organizations (id) ON DELETE SET NULL,
    active           boolean NOT NULL DEFAULT true,
    checked_at       timestamptz,
    check_error      text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE compute_profiles (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    provider_kind   provider_kind NOT NULL,
    cpu             integer NOT NULL CHECK (cpu > 0),
    ram_mb          integer NOT NULL CHECK (ram_mb > 0),
    disk_gb         integer NOT NULL CHECK (disk_gb > 0),
    -- Per month, in euro cents.
    price_cents     integer NOT NULL CHECK (price_cents >= 0),
    -- Provider parameters: server_type, location, product, cores, ...
    parameters      jsonb NOT NULL DEFAULT '{}',
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Billing agreements: an organization's own price for a profile.
CREATE TABLE profile_prices (
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    profile_id       uuid NOT NULL REFERENCES compute_profiles (id) ON DELETE CASCADE,
    price_cents      integer NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (organization_id, profile_id)
);
