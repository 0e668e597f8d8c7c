-- Marketing and members' own data (SPEC K1, K3, M3, M4, M5): lotteries, favorites,
-- notification settings, avatar, webview hand-off replay protection.

CREATE TABLE lotteries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    currency   text NOT NULL DEFAULT 'points' REFERENCES currencies(code),
    cost       bigint NOT NULL CHECK (cost > 0),
    -- Draws per member per UTC day; NULL for no limit.
    daily_limit integer CHECK (daily_limit > 0),
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lottery_prizes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lottery_id bigint NOT NULL REFERENCES lotteries(id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- points: credited at once; item: recorded for staff to fulfil.
    kind       text NOT NULL CHECK (kind IN ('points', 'item')),
    points     bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    -- Chance in basis points (1/10000); the rest of 10000 is "no prize".
    weight     integer NOT NULL CHECK (weight BETWEEN 0 AND 10000),
    -- NULL: unlimited.
    stock      bigint CHECK (stock >= 0),
    won        bigint NOT NULL DEFAULT 0 CHECK (won >= 0),
    position   integer NOT NULL DEFAULT 0,
    CHECK (stock IS NULL OR won <= stock)
);
CREATE INDEX lottery_prizes_lottery_idx ON lottery_prizes (lottery_id, position, id);

CREATE TABLE lottery_draws (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lottery_id bigint NOT NULL REFERENCES lotteries(id),
    member_id  bigint NOT NULL REFERENCES members(id),
    prize_id   bigint REFERENCES lottery_prizes(id),
    cost_entry_id bigint NOT NULL REFERENCES entries(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lottery_draws_member_idx ON lottery_draws (member_id, lottery_id, created_at);

ALTER TABLE members ADD COLUMN avatar_url text CHECK (length(avatar_url) <= 2048);
ALTER TABLE members ADD COLUMN notifications jsonb NOT NULL DEFAULT '{"order_updates": true, "expiry_reminders": true, "marketing": false}'::jsonb;
ALTER TABLE members ADD COLUMN last_active_at timestamptz;

CREATE TABLE favorites (
    member_id  bigint NOT NULL REFERENCES members(id),
    product_id bigint NOT NULL REFERENCES products(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, product_id)
);

-- Webview hand-off tokens already used (a token signs a member in once).
CREATE TABLE webview_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
