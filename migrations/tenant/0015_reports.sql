-- Reports (issue 13 points 6-7, SPEC B1 and B4): rollups kept up to date by the writes
-- themselves, so the dashboard and the finance report never scan the history.
--
-- Sums (points by currency and reason, orders by product, new members, page views) are
-- kept per quarter hour of UTC ("bucket"): every time zone's midnight falls on a quarter
-- hour, so any mall's local days and months are exact unions of buckets, whatever its
-- zone is now or was then. Distinct counts (active members, unique visitors) cannot be
-- added up from buckets: they are kept per local day of the mall's zone at the time.
--
-- The sum tables are append-only: a writer inserts its own rows (one per key and
-- statement) and never updates a shared row, so concurrent writers never wait for each
-- other or deadlock; the jobs fold the fresh rows of a key into one (`compacted`).

ALTER TABLE products ADD COLUMN cost_price_fen bigint CHECK (cost_price_fen >= 0);
-- What the redeemed goods cost the mall (cost price × quantity when the order was made).
ALTER TABLE orders ADD COLUMN cost_fen bigint;

CREATE TABLE ledger_rollup (
    bucket    timestamptz NOT NULL,
    currency  text NOT NULL,
    reason    text NOT NULL,
    amount    bigint NOT NULL,
    locked    bigint NOT NULL,
    entries   bigint NOT NULL,
    compacted boolean NOT NULL DEFAULT false
);
CREATE INDEX ledger_rollup_bucket_idx ON ledger_rollup (bucket);
CREATE INDEX ledger_rollup_fresh_idx ON ledger_rollup (bucket) WHERE NOT compacted;

-- Orders per product: made (+1) and given back by a cancellation or refund (-1 at the
-- time of the change), with their quantity, points, cash and cost.
CREATE TABLE order_rollup (
    bucket     timestamptz NOT NULL,
    product_id bigint NOT NULL,
    currency   text NOT NULL,
    placed     bigint NOT NULL,
    returned   bigint NOT NULL,
    quantity   bigint NOT NULL,
    points     bigint NOT NULL,
    cash_fen   bigint NOT NULL,
    cost_fen   bigint NOT NULL,
    -- Orders whose product had no cost price.
    uncosted   bigint NOT NULL,
    compacted  boolean NOT NULL DEFAULT false
);
CREATE INDEX order_rollup_bucket_idx ON order_rollup (bucket);
CREATE INDEX order_rollup_fresh_idx ON order_rollup (bucket) WHERE NOT compacted;

-- New members, page views (product views and searches) per bucket.
CREATE TABLE traffic_rollup (
    bucket      timestamptz NOT NULL,
    new_members bigint NOT NULL DEFAULT 0,
    views       bigint NOT NULL DEFAULT 0,
    searches    bigint NOT NULL DEFAULT 0,
    compacted   boolean NOT NULL DEFAULT false
);
CREATE INDEX traffic_rollup_bucket_idx ON traffic_rollup (bucket);
CREATE INDEX traffic_rollup_fresh_idx ON traffic_rollup (bucket) WHERE NOT compacted;

-- Product views per product and bucket (hot products by views).
CREATE TABLE product_views (
    bucket     timestamptz NOT NULL,
    product_id bigint NOT NULL,
    views      bigint NOT NULL,
    compacted  boolean NOT NULL DEFAULT false
);
CREATE INDEX product_views_bucket_idx ON product_views (bucket);
CREATE INDEX product_views_fresh_idx ON product_views (bucket) WHERE NOT compacted;

-- Members active on a local day: a ledger entry of their own doing (earning, spending,
-- sending a transfer, a hold for a checkout; not expiry, releases, returns, staff
-- adjustments or receiving a transfer), or a product view or search while signed in.
CREATE TABLE active_days (
    day       date NOT NULL,
    member_id bigint NOT NULL,
    PRIMARY KEY (day, member_id)
);

-- Signed-in members who viewed a product or searched on a local day (unique visitors).
CREATE TABLE visitor_days (
    day       date NOT NULL,
    member_id bigint NOT NULL,
    PRIMARY KEY (day, member_id)
);

-- How many members became active, and visited, on a local day (the rows each writer
-- added to `active_days` and `visitor_days`; append-only like the sums).
CREATE TABLE daily_counts (
    day       date NOT NULL,
    active    bigint NOT NULL DEFAULT 0,
    visitors  bigint NOT NULL DEFAULT 0,
    compacted boolean NOT NULL DEFAULT false
);
CREATE INDEX daily_counts_day_idx ON daily_counts (day);
CREATE INDEX daily_counts_fresh_idx ON daily_counts (day) WHERE NOT compacted;

-- The quarter hour `at` falls in.
CREATE FUNCTION report_bucket(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00') $$;

-- The mall's time zone (its settings), Asia/Shanghai when none is stored; NULL outside a
-- mall's schema (an alliance's, whose entries no mall report reads).
CREATE FUNCTION report_zone() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT COALESCE(t.settings->>'time_zone', 'Asia/Shanghai')
          FROM control.tenants t WHERE t.schema_name = current_schema() $$;

CREATE FUNCTION entries_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    zone text := report_zone();
BEGIN
    IF zone IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO ledger_rollup (bucket, currency, reason, amount, locked, entries)
    SELECT report_bucket(created_at), currency, reason, sum(amount), sum(locked_delta), count(*)
    FROM fresh_entries GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
    WITH added AS (
        INSERT INTO active_days (day, member_id)
        SELECT DISTINCT (created_at AT TIME ZONE zone)::date, member_id FROM fresh_entries
        WHERE reason IN ('earn', 'spend', 'transfer_out', 'hold')
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING RETURNING day)
    INSERT INTO daily_counts (day, active) SELECT day, count(*) FROM added GROUP BY day;
    RETURN NULL;
END $$;
CREATE TRIGGER entries_rollup AFTER INSERT ON entries
    REFERENCING NEW TABLE AS fresh_entries FOR EACH STATEMENT EXECUTE FUNCTION entries_rollup();

CREATE FUNCTION orders_cost() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.cost_fen := (SELECT p.cost_price_fen * NEW.quantity FROM products p WHERE p.id = NEW.product_id);
    RETURN NEW;
END $$;
CREATE TRIGGER orders_cost BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_cost();

CREATE FUNCTION orders_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    dir bigint;
    moment timestamptz;
BEGIN
    IF TG_OP = 'INSERT' THEN
        dir := 1;
        moment := NEW.created_at;
    ELSIF NEW.status IN ('cancelled', 'refunded') AND OLD.status NOT IN ('cancelled', 'refunded') THEN
        dir := -1;
        moment := now();
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO order_rollup (bucket, product_id, currency, placed, returned, quantity, points, cash_fen, cost_fen, uncosted)
    VALUES (report_bucket(moment), NEW.product_id, NEW.currency,
            CASE WHEN dir = 1 THEN 1 ELSE 0 END, CASE WHEN dir = -1 THEN 1 ELSE 0 END,
            dir * NEW.quantity, dir * NEW.points_amount, dir * NEW.cash_fen,
            dir * COALESCE(NEW.cost_fen, 0), CASE WHEN NEW.cost_fen IS NULL THEN dir ELSE 0 END);
    RETURN NULL;
END $$;
CREATE TRIGGER orders_rollup_insert AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_rollup();
CREATE TRIGGER orders_rollup_status AFTER UPDATE OF status ON orders FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION orders_rollup();

CREATE FUNCTION members_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF report_zone() IS NOT NULL THEN
        INSERT INTO traffic_rollup (bucket, new_members) VALUES (report_bucket(NEW.created_at), 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER members_rollup AFTER INSERT ON members FOR EACH ROW EXECUTE FUNCTION members_rollup();

-- What the mall already holds (no product had a cost price before this migration).
INSERT INTO ledger_rollup (bucket, currency, reason, amount, locked, entries, compacted)
SELECT report_bucket(created_at), currency, reason, sum(amount), sum(locked_delta), count(*), true
FROM entries GROUP BY 1, 2, 3;
INSERT INTO active_days (day, member_id)
SELECT DISTINCT (created_at AT TIME ZONE report_zone())::date, member_id FROM entries
WHERE reason IN ('earn', 'spend', 'transfer_out', 'hold') AND report_zone() IS NOT NULL;
INSERT INTO daily_counts (day, active, compacted) SELECT day, count(*), true FROM active_days GROUP BY day;
INSERT INTO order_rollup (bucket, product_id, currency, placed, returned, quantity, points, cash_fen, cost_fen, uncosted, compacted)
SELECT report_bucket(created_at), product_id, currency, count(*), 0, sum(quantity), sum(points_amount), sum(cash_fen), 0, count(*), true
FROM orders GROUP BY 1, 2, 3;
-- Cancelled and refunded orders: given back when they left their last live state.
INSERT INTO order_rollup (bucket, product_id, currency, placed, returned, quantity, points, cash_fen, cost_fen, uncosted, compacted)
SELECT report_bucket(COALESCE(h.at, o.updated_at)), o.product_id, o.currency, 0, count(*), -sum(o.quantity),
       -sum(o.points_amount), -sum(o.cash_fen), 0, -count(*), true
FROM orders o
LEFT JOIN LATERAL (SELECT max(created_at) AS at FROM order_history
                   WHERE order_id = o.id AND to_status IN ('cancelled', 'refunded')) h ON true
WHERE o.status IN ('cancelled', 'refunded')
GROUP BY 1, 2, 3;
INSERT INTO traffic_rollup (bucket, new_members, compacted)
SELECT report_bucket(created_at), count(*), true FROM members WHERE report_zone() IS NOT NULL GROUP BY 1;
