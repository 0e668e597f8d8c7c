-- Webhooks (SPEC P3, issue 12 point 7): the merchant's endpoints and the outbox of
-- deliveries to them. A delivery row is written in the same transaction as the change
-- it reports; the worker claims due rows with FOR UPDATE SKIP LOCKED in a short
-- transaction (pushing next_attempt_at out as a lease), sends without a transaction
-- open, then records the outcome. Every schema has this DDL: in a merchant schema the
-- endpoints are the mall's (owner_kind 'mall'); in an alliance schema (a_<id>) they
-- would be the alliance's ('alliance', not exposed yet).
CREATE TABLE webhook_endpoints (
    id bigserial PRIMARY KEY,
    owner_kind text NOT NULL DEFAULT 'mall' CHECK (owner_kind IN ('mall', 'alliance')),
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    event_types text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 16),
    -- `whsec_…`, sealed with the vault (bound to the tenant and this row's id).
    secret_sealed text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    -- Why the endpoint was turned off by the worker (NULL when on, or off by staff).
    disabled_reason text CHECK (length(disabled_reason) <= 500),
    -- Failed attempts in a row (any delivery); a success resets it.
    failure_run integer NOT NULL DEFAULT 0 CHECK (failure_run >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The `webhook-id` header (msg_<event_id>): the same for every endpoint an event
    -- goes to, for every retry and for a manual replay, so receivers can de-duplicate.
    event_id uuid NOT NULL,
    event_type text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 64),
    -- The body sent: {"type", "timestamp", "data"}.
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status_code integer,
    last_latency_ms integer,
    last_error text CHECK (length(last_error) <= 500),
    response_excerpt text CHECK (length(response_excerpt) <= 1024),
    -- The delivery this one replays (manual replay).
    replay_of bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);

-- The worker's claim: due pending deliveries, oldest due first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- An endpoint's delivery log, newest first.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
