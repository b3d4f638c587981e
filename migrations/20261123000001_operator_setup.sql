-- One-time links that let the first platform operator create their account.
-- Only the SHA-256 digest of a link's token is stored.
CREATE TABLE operator_setup_tokens (
    id          uuid PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
