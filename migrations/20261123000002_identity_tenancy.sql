-- Accounts, second factors, API keys, mail outbox, sign-in throttling,
-- organizations, projects, memberships, roles, invitations and the audit log.

CREATE TABLE accounts (
    id              uuid PRIMARY KEY,
    email           text NOT NULL,
    display_name    text NOT NULL,
    password_hash   text NOT NULL,
    is_operator     boolean NOT NULL DEFAULT false,
    -- Raised by "sign out everywhere" and password resets: sessions signed in
    -- under an older epoch are no longer valid.
    session_epoch   integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_is_normalised CHECK (email = lower(btrim(email)))
);
CREATE UNIQUE INDEX accounts_email ON accounts (email);

-- The first operator redeems a setup link; remember who did.
ALTER TABLE operator_setup_tokens ADD COLUMN used_by uuid REFERENCES accounts (id);

CREATE TABLE totp_credentials (
    account_id      uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    secret_sealed   bytea NOT NULL,
    -- Set once the user proved the authenticator works; until then TOTP is
    -- not required at sign-in.
    confirmed_at    timestamptz,
    -- Time step of the last accepted code: a code is never accepted twice.
    last_used_step  bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recovery_codes (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recovery_codes_account ON recovery_codes (account_id);

CREATE TABLE passkeys (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            text NOT NULL,
    credential_id   bytea NOT NULL UNIQUE,
    -- webauthn-rs Passkey (public key and counter; no secret).
    credential      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz
);
CREATE INDEX passkeys_account ON passkeys (account_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          text NOT NULL,
    -- Shown in lists so a key can be recognised; not enough to use it.
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE password_reset_tokens (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox_emails (
    id            uuid PRIMARY KEY,
    to_address    text NOT NULL,
    subject       text NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error    text
);
CREATE INDEX outbox_emails_due ON outbox_emails (next_attempt_at) WHERE sent_at IS NULL;

-- Failed sign-in and second-factor attempts per account and per client IP.
CREATE TABLE sign_in_throttle (
    key           text PRIMARY KEY,
    failures      integer NOT NULL,
    locked_until  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE organization_verification AS ENUM ('pending', 'verified', 'rejected');
CREATE TYPE organization_state AS ENUM ('active', 'suspended');

CREATE TABLE organizations (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    verification  organization_verification NOT NULL DEFAULT 'pending',
    state         organization_state NOT NULL DEFAULT 'active',
    created_by    uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organizations_name ON organizations (lower(name));

CREATE TABLE projects (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projects_name_per_org ON projects (organization_id, lower(name));

CREATE TYPE workspace_kind AS ENUM ('kubernetes', 'baremetal');

-- Provisioning fills the rest of a workspace in later migrations.
CREATE TABLE workspaces (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    name        text NOT NULL,
    kind        workspace_kind NOT NULL,
    state       text NOT NULL DEFAULT 'initializing',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workspaces_name_per_project ON workspaces (project_id, name);

CREATE TABLE memberships (
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    account_id       uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, account_id)
);
CREATE INDEX memberships_account ON memberships (account_id);

-- Custom roles: named sets of permission keys, per organization. The built-in
-- roles (owner, admin, member, viewer) live in code.
CREATE TABLE roles (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    permissions      text[] NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_name_per_org ON roles (organization_id, lower(name));

CREATE TYPE scope_kind AS ENUM ('organization', 'project', 'workspace');

CREATE TABLE role_bindings (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    account_id       uuid NOT NULL,
    scope_kind       scope_kind NOT NULL,
    -- The project or workspace; NULL for organization scope.
    scope_id         uuid,
    builtin_role     text,
    role_id          uuid REFERENCES roles (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, account_id) REFERENCES memberships (organization_id, account_id) ON DELETE CASCADE,
    CHECK (num_nonnulls(builtin_role, role_id) = 1),
    CHECK ((scope_kind = 'organization') = (scope_id IS NULL)),
    CHECK (builtin_role IS NULL OR builtin_role IN ('owner', 'admin', 'member', 'viewer'))
);
CREATE INDEX role_bindings_lookup ON role_bindings (account_id, organization_id);
CREATE INDEX role_bindings_scope ON role_bindings (scope_id) WHERE scope_id IS NOT NULL;
CREATE UNIQUE INDEX role_bindings_unique ON role_bindings
    (organization_id, account_id, scope_kind, coalesce(scope_id, '00000000-0000-0000-0000-000000000000'), coalesce(builtin_role, role_id::text));

CREATE TABLE invitations (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            text NOT NULL CHECK (email = lower(btrim(email))),
    builtin_role     text,
    role_id          uuid REFERENCES roles (id) ON DELETE CASCADE,
    token_hash       bytea NOT NULL UNIQUE,
    invited_by       uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    accepted_at      timestamptz,
    declined_at      timestamptz,
    revoked_at       timestamptz,
    CHECK (num_nonnulls(builtin_role, role_id) = 1)
);
CREATE INDEX invitations_email ON invitations (email) WHERE accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_org ON invitations (organization_id);

CREATE TABLE audit_log (
    id               uuid PRIMARY KEY,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    actor_account_id uuid REFERENCES accounts (id) ON DELETE SET NULL,
    actor_email      text,
    api_key_id       uuid,
    organization_id  uuid REFERENCES organizations (id) ON DELETE SET NULL,
    action           text NOT NULL,
    target_kind      text NOT NULL,
    target_id        text,
    details          jsonb NOT NULL DEFAULT '{}',
    ip               inet,
    user_agent       text
);
CREATE INDEX audit_log_org_time ON audit_log (organization_id, occurred_at DESC);
CREATE INDEX audit_log_time ON audit_log (occurred_at DESC);
