-- The points ledger (SPEC L1-L11) and levels (V1-V3).
-- Invariants, asserted by `pointsmall ledger verify`:
--   accounts.balance = sum(entries.amount)          = sum(lots.remaining) of the account
--   accounts.locked  = sum(entries.locked_delta)     = sum(lock_grants.total - released)
--   every debit's allocations add up to its amount
--   entries of an account form a hash chain (seq 1, 2, …; prev_hash → hash)

CREATE TABLE currencies (
    code         text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    -- Experience is never spendable; it drives levels.
    spendable    boolean NOT NULL,
    transferable boolean NOT NULL DEFAULT false,
    -- Whether the tenant's expiry policy applies to this currency's lots.
    expires      boolean NOT NULL DEFAULT true,
    drives_level boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO currencies (code, name, spendable, transferable, expires, drives_level) VALUES
    ('points', '积分', true, true, true, false),
    ('exp', '经验', false, false, false, true);

CREATE TABLE accounts (
    member_id       bigint NOT NULL REFERENCES members(id),
    currency        text NOT NULL REFERENCES currencies(code),
    balance         bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    locked          bigint NOT NULL DEFAULT 0 CHECK (locked >= 0),
    lifetime_earned bigint NOT NULL DEFAULT 0 CHECK (lifetime_earned >= 0),
    entry_count     bigint NOT NULL DEFAULT 0 CHECK (entry_count >= 0),
    head_hash       bytea NOT NULL DEFAULT ''::bytea,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, currency)
);

CREATE TABLE entries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id     bigint NOT NULL,
    currency      text NOT NULL,
    seq           bigint NOT NULL CHECK (seq >= 1),
    amount        bigint NOT NULL,
    locked_delta  bigint NOT NULL DEFAULT 0,
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    reason        text NOT NULL CHECK (reason IN ('earn', 'spend', 'adjust', 'expire', 'transfer_in', 'transfer_out',
                                                  'hold', 'hold_return', 'refund', 'lock', 'release')),
    source_kind   text NOT NULL CHECK (source_kind IN ('rule', 'order', 'admin', 'transfer', 'partner', 'hold', 'system', 'member')),
    source_ref    text NOT NULL DEFAULT '' CHECK (length(source_ref) <= 200),
    rule_id       bigint,
    rule_version  integer,
    memo          text NOT NULL DEFAULT '' CHECK (length(memo) <= 500),
    actor         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    UNIQUE (member_id, currency, seq),
    FOREIGN KEY (member_id, currency) REFERENCES accounts (member_id, currency),
    CHECK (amount <> 0 OR locked_delta <> 0)
);
CREATE INDEX entries_member_idx ON entries (member_id, id DESC);

CREATE TABLE lots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint NOT NULL,
    currency   text NOT NULL,
    entry_id   bigint NOT NULL REFERENCES entries(id),
    amount     bigint NOT NULL CHECK (amount > 0),
    remaining  bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    earned_at  timestamptz NOT NULL,
    expires_at timestamptz,
    -- Set when the expiry job lapsed what was left of the lot.
    expired_amount bigint NOT NULL DEFAULT 0 CHECK (expired_amount >= 0),
    FOREIGN KEY (member_id, currency) REFERENCES accounts (member_id, currency)
);
CREATE INDEX lots_open_idx ON lots (member_id, currency, expires_at, id) WHERE remaining > 0;
CREATE INDEX lots_due_idx ON lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

-- Which lots a debit drew from, and how much of that was given back since.
CREATE TABLE allocations (
    entry_id bigint NOT NULL REFERENCES entries(id),
    lot_id   bigint NOT NULL REFERENCES lots(id),
    amount   bigint NOT NULL CHECK (amount > 0),
    returned bigint NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= amount),
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX allocations_lot_idx ON allocations (lot_id);

-- Locked points released on a schedule (seed 004: gifted points released daily).
CREATE TABLE lock_grants (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id       bigint NOT NULL,
    currency        text NOT NULL,
    entry_id        bigint NOT NULL REFERENCES entries(id),
    total           bigint NOT NULL CHECK (total > 0),
    released        bigint NOT NULL DEFAULT 0 CHECK (released >= 0 AND released <= total),
    per_day         bigint NOT NULL CHECK (per_day > 0),
    next_release_at timestamptz NOT NULL,
    memo            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (member_id, currency) REFERENCES accounts (member_id, currency)
);
CREATE INDEX lock_grants_due_idx ON lock_grants (next_release_at) WHERE released < total;
CREATE INDEX lock_grants_member_idx ON lock_grants (member_id, currency);

-- Points held for a partner's checkout (L9): held → captured (fully or partly) or voided/expired.
CREATE TABLE holds (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   bigint NOT NULL,
    currency    text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    captured    bigint NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
    refunded    bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    status      text NOT NULL CHECK (status IN ('held', 'captured', 'voided', 'expired')),
    entry_id    bigint NOT NULL REFERENCES entries(id),
    reference   text NOT NULL DEFAULT '' CHECK (length(reference) <= 200),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (member_id, currency) REFERENCES accounts (member_id, currency)
);
CREATE INDEX holds_due_idx ON holds (expires_at) WHERE status = 'held';

-- Idempotency of external writes (L8): the key row is written in the same transaction
-- as the effects, so a concurrent duplicate waits on the unique index and then reads
-- the stored response.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash bytea NOT NULL,
    status       integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Levels (V1-V3): thresholds on a level-driving currency (experience by default).
CREATE TABLE levels (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    threshold  bigint NOT NULL CHECK (threshold >= 0),
    -- Benefits read by rules and the catalog, e.g. {"earn_multiplier": 1.5, "monthly_gift": 100}.
    benefits   jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Levels taken out of the table are retired, not deleted: history points at them.
    retired    boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX levels_threshold_idx ON levels (threshold) WHERE NOT retired;
INSERT INTO levels (name, threshold, benefits) VALUES
    ('普通', 0, '{"earn_multiplier": 1.0}'),
    ('银卡', 1000, '{"earn_multiplier": 1.2}'),
    ('金卡', 5000, '{"earn_multiplier": 1.5}'),
    ('钻石', 10000, '{"earn_multiplier": 2.0}');

ALTER TABLE members ADD COLUMN level_id bigint REFERENCES levels(id);

CREATE TABLE level_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint NOT NULL REFERENCES members(id),
    from_level bigint REFERENCES levels(id),
    to_level   bigint REFERENCES levels(id),
    entry_id   bigint REFERENCES entries(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX level_changes_member_idx ON level_changes (member_id, id DESC);

-- Internal events for the rules pipeline and webhooks (level_changed, points_released…).
CREATE TABLE events_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL,
    member_id  bigint,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX events_outbox_pending_idx ON events_outbox (id) WHERE processed_at IS NULL;

-- In-app messages (expiry reminders now; order updates and level changes later).
CREATE TABLE messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint NOT NULL REFERENCES members(id),
    kind       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    -- Makes a reminder job safe to run twice: one message per dedupe key.
    dedupe_key text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX messages_member_idx ON messages (member_id, id DESC);
