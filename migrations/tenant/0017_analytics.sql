-- Analytics (issue 13 point 8, SPEC B7): what the reports' rollups (0015) do not keep.
--
-- * Retention reads `members.created_at` (indexed since 0013) and `active_days` (0015).
-- * Conversion: signed-in members who viewed a product on a local day (written with the
--   page views, about once a second, never per request), against their orders.
-- * Searches: per local day and normalised term, how often it was searched and how often
--   its first page found nothing (append-only like the rollups; the jobs fold them).
-- * A member's browse record: one row per product they viewed, with the last time and how
--   often; at most 200 products per member, none older than 90 days (trimmed when written
--   and by the jobs).
-- * Points velocity: points spent per local day of spending, currency and age in local
--   days since they were earned, kept by a trigger on `allocations` in the spending
--   transaction (a debit's allocations name the lots it drew on and so their earning
--   time); points given back to their lots are taken off the day they were spent.

CREATE TABLE product_viewers (
    day        date NOT NULL,
    product_id bigint NOT NULL,
    member_id  bigint NOT NULL,
    PRIMARY KEY (day, product_id, member_id)
);

CREATE TABLE search_terms (
    day       date NOT NULL,
    term      text NOT NULL CHECK (length(term) BETWEEN 1 AND 50),
    searches  bigint NOT NULL,
    -- Searches whose first page found no product.
    empty     bigint NOT NULL,
    compacted boolean NOT NULL DEFAULT false
);
CREATE INDEX search_terms_day_idx ON search_terms (day);
CREATE INDEX search_terms_fresh_idx ON search_terms (day) WHERE NOT compacted;

CREATE TABLE browse_records (
    member_id  bigint NOT NULL,
    product_id bigint NOT NULL,
    viewed_at  timestamptz NOT NULL,
    views      bigint NOT NULL CHECK (views > 0),
    PRIMARY KEY (member_id, product_id)
);
CREATE INDEX browse_records_recent_idx ON browse_records (member_id, viewed_at DESC);
CREATE INDEX browse_records_age_idx ON browse_records (viewed_at);

CREATE TABLE spend_ages (
    day       date NOT NULL,
    currency  text NOT NULL,
    age_days  integer NOT NULL,
    points    bigint NOT NULL,
    compacted boolean NOT NULL DEFAULT false
);
CREATE INDEX spend_ages_day_idx ON spend_ages (day);
CREATE INDEX spend_ages_fresh_idx ON spend_ages (day) WHERE NOT compacted;

-- Spending (orders and partners' checkouts: reasons spend and hold) by the age of the
-- points taken. Expiry and transfers draw on lots too; they are not spending.
CREATE FUNCTION allocations_ages() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    zone text := report_zone();
BEGIN
    IF zone IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO spend_ages (day, currency, age_days, points)
    SELECT (e.created_at AT TIME ZONE zone)::date, e.currency,
           (e.created_at AT TIME ZONE zone)::date - (l.earned_at AT TIME ZONE zone)::date, sum(a.amount)
    FROM fresh_allocations a JOIN entries e ON e.id = a.entry_id JOIN lots l ON l.id = a.lot_id
    WHERE e.reason IN ('spend', 'hold')
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;
CREATE TRIGGER allocations_ages AFTER INSERT ON allocations
    REFERENCING NEW TABLE AS fresh_allocations FOR EACH STATEMENT EXECUTE FUNCTION allocations_ages();

CREATE FUNCTION allocations_returned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    zone text := report_zone();
BEGIN
    IF zone IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO spend_ages (day, currency, age_days, points)
    SELECT (e.created_at AT TIME ZONE zone)::date, e.currency,
           (e.created_at AT TIME ZONE zone)::date - (l.earned_at AT TIME ZONE zone)::date, OLD.returned - NEW.returned
    FROM entries e, lots l
    WHERE e.id = NEW.entry_id AND l.id = NEW.lot_id AND e.reason IN ('spend', 'hold');
    RETURN NULL;
END $$;
CREATE TRIGGER allocations_returned AFTER UPDATE OF returned ON allocations FOR EACH ROW
    WHEN (NEW.returned IS DISTINCT FROM OLD.returned) EXECUTE FUNCTION allocations_returned();

-- What the mall already spent (views, viewers and searches were never logged before).
INSERT INTO spend_ages (day, currency, age_days, points, compacted)
SELECT (e.created_at AT TIME ZONE report_zone())::date, e.currency,
       (e.created_at AT TIME ZONE report_zone())::date - (l.earned_at AT TIME ZONE report_zone())::date,
       sum(a.amount - a.returned), true
FROM allocations a JOIN entries e ON e.id = a.entry_id JOIN lots l ON l.id = a.lot_id
WHERE e.reason IN ('spend', 'hold') AND report_zone() IS NOT NULL
GROUP BY 1, 2, 3;
