-- A merchant's own schema (t_<id>). Every tenant schema has identical DDL: statements
-- prepared in one schema are re-planned in another and must keep their result types.

CREATE TABLE members (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone         text UNIQUE CHECK (phone ~ '^\+?[0-9]{6,15}$'),
    email         text UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text,
    nickname      text NOT NULL DEFAULT '' CHECK (length(nickname) <= 64),
    external_id   text UNIQUE CHECK (length(external_id) BETWEEN 1 AND 128),
    invite_code   text NOT NULL UNIQUE,
    invited_by    bigint REFERENCES members(id),
    -- Link to the alliance identity when this merchant belongs to an alliance (issue: alliances).
    alliance_member_id bigint,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (phone IS NOT NULL OR email IS NOT NULL)
);

-- Refresh tokens of members (SHA-256 of the random token).
CREATE TABLE member_sessions (
    token_hash  bytea PRIMARY KEY,
    member_id   bigint NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_sessions_member_idx ON member_sessions (member_id);

-- One-time codes (login, registration, password reset); only a hash is kept.
CREATE TABLE verification_codes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination text NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('login', 'register', 'reset_password')),
    code_hash   bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX verification_codes_dest_idx ON verification_codes (destination, purpose, id DESC);
