-- The marketing screens (issue 14; SPEC K1, K3): the mall's own check-in table, a
-- lottery's window and a prize table that can change without losing what was won, and
-- the indexes the screens' lists read by.

-- The check-in rewards of the built-in check-in rule (K1): one row at most; without it
-- the built-in defaults apply. A mall's own enabled `checked_in` rule replaces both.
CREATE TABLE checkin_rewards (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Points on day 1, 2, …; the last entry repeats after the table's end.
    streak_table bigint[] NOT NULL
        CHECK (cardinality(streak_table) BETWEEN 1 AND 31 AND 0 < ALL (streak_table) AND 1000000 >= ALL (streak_table)),
    -- Extra points on every 7th consecutive day (0: none).
    day7_bonus  bigint NOT NULL CHECK (day7_bonus BETWEEN 0 AND 1000000),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A lottery runs inside its window (either end open).
ALTER TABLE lotteries ADD COLUMN starts_at timestamptz;
ALTER TABLE lotteries ADD COLUMN ends_at timestamptz;
ALTER TABLE lotteries ADD CONSTRAINT lotteries_window CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at);

-- A prize taken out of a table that was already won stays for the draws' history.
ALTER TABLE lottery_prizes ADD COLUMN retired boolean NOT NULL DEFAULT false;

-- A lottery's draws and winners, newest first.
CREATE INDEX lottery_draws_lottery_idx ON lottery_draws (lottery_id, id DESC);

-- Check-ins per local day across members (the check-in screen's figures).
CREATE INDEX event_days_type_day_idx ON event_days (type, day);
