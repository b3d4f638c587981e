-- Browser sessions (tower-sessions-sqlx-store's PostgresStore layout). The
-- data is the store's own encoding; what the portal keeps there is the
-- signed-in account, its session epoch, and WebAuthn ceremony state.
CREATE SCHEMA IF NOT EXISTS tower_sessions;
CREATE TABLE IF NOT EXISTS tower_sessions.session (
    id           text PRIMARY KEY NOT NULL,
    data         bytea NOT NULL,
    expiry_date  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS session_expiry ON tower_sessions.session (expiry_date);
