-- Staff session families (see the tenant migration 0007) and throttle counters shared
-- by every server instance (issue 10: hardening).
ALTER TABLE control.staff_sessions
    ADD COLUMN family uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN rotated_at timestamptz;
CREATE INDEX staff_sessions_family_idx ON control.staff_sessions (family);

-- Fixed-window counters: login attempts per account and per client address, code sends
-- per destination. Counted atomically with one upsert, so concurrent attempts and other
-- instances see the same count.
CREATE TABLE control.throttles (
    key               text PRIMARY KEY CHECK (length(key) <= 512),
    window_started_at timestamptz NOT NULL,
    hits              integer NOT NULL
);
