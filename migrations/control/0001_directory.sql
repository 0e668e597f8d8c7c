-- Control schema: the tenant directory, alliances, staff, API keys, audit log.
-- Everything here is shared by every tenant; merchant data lives in its own schema.

CREATE TABLE control.clusters (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    note        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO control.clusters (name, note) VALUES ('main', 'the cluster that also holds the control schema');

CREATE TABLE control.alliances (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,39}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Every merchant of an alliance lives on this cluster, so that a redemption paid in
    -- shared points is one local transaction (see ARCHITECTURE.md).
    cluster     text NOT NULL DEFAULT 'main' REFERENCES control.clusters(name),
    -- Schema that will hold the alliance's identities and shared-currency ledger.
    schema_name text NOT NULL UNIQUE CHECK (schema_name ~ '^a_[0-9]+$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE control.tenants (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,39}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Derived from the id ("t_<id>"), never from user input.
    schema_name    text NOT NULL UNIQUE CHECK (schema_name ~ '^t_[0-9]+$'),
    cluster        text NOT NULL DEFAULT 'main' REFERENCES control.clusters(name),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    alliance_id    bigint REFERENCES control.alliances(id),
    settings       jsonb NOT NULL DEFAULT '{}'::jsonb,
    schema_version bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_alliance_idx ON control.tenants (alliance_id) WHERE alliance_id IS NOT NULL;

-- Staff of every level. scope says which level: the platform (no tenant, no alliance),
-- one alliance, or one tenant (merchant).
CREATE TABLE control.staff_users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         text NOT NULL CHECK (scope IN ('platform', 'alliance', 'tenant')),
    tenant_id     bigint REFERENCES control.tenants(id) ON DELETE CASCADE,
    alliance_id   bigint REFERENCES control.alliances(id) ON DELETE CASCADE,
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    display_name  text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('platform_admin', 'alliance_admin', 'owner', 'operator', 'finance', 'customer_service', 'auditor')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'platform' AND tenant_id IS NULL AND alliance_id IS NULL AND role = 'platform_admin')
        OR (scope = 'alliance' AND tenant_id IS NULL AND alliance_id IS NOT NULL AND role = 'alliance_admin')
        OR (scope = 'tenant' AND tenant_id IS NOT NULL AND alliance_id IS NULL
            AND role IN ('owner', 'operator', 'finance', 'customer_service', 'auditor')))
);
CREATE UNIQUE INDEX staff_users_platform_email ON control.staff_users (email) WHERE scope = 'platform';
CREATE UNIQUE INDEX staff_users_alliance_email ON control.staff_users (alliance_id, email) WHERE scope = 'alliance';
CREATE UNIQUE INDEX staff_users_tenant_email ON control.staff_users (tenant_id, email) WHERE scope = 'tenant';

-- Refresh tokens of staff: only a SHA-256 of the random token is stored.
CREATE TABLE control.staff_sessions (
    token_hash  bytea PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES control.staff_users(id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_sessions_staff_idx ON control.staff_sessions (staff_id);

-- Partner API keys: shown once; the secret part is stored as SHA-256 (keys carry 256
-- bits of entropy, so a slow hash adds nothing); looked up by their public prefix.
CREATE TABLE control.api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES control.tenants(id) ON DELETE CASCADE,
    prefix      text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scopes      text[] NOT NULL,
    created_by  bigint REFERENCES control.staff_users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON control.api_keys (tenant_id);

-- Every staff write, written in the same transaction as the write itself.
CREATE TABLE control.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('staff', 'cli', 'system', 'partner')),
    actor_id    bigint,
    actor_label text NOT NULL DEFAULT '',
    tenant_id   bigint,
    alliance_id bigint,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text
);
CREATE INDEX audit_log_tenant_idx ON control.audit_log (tenant_id, id DESC);

-- Messages recorded by the development sender (verification codes and the like).
CREATE TABLE control.dev_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint,
    channel     text NOT NULL,
    destination text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dev_outbox_dest_idx ON control.dev_outbox (destination, id DESC);
