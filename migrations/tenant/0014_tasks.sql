-- The task centre (SPEC K2, issue 13 point 3): tasks the merchant defines over any
-- event type — a count of events, or a run of consecutive days with one — once, per
-- day or per week, within an optional window, rewarded once per period with points or
-- experience. Progress is kept per member and period, updated in the transaction that
-- records the events; completing a task emits `task_completed` for the rules.
CREATE TABLE tasks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_type       text NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_]{0,63}$'),
    target           integer NOT NULL CHECK (target BETWEEN 1 AND 1000),
    -- True: `target` consecutive days (of the mall's time zone) with at least one event.
    consecutive_days boolean NOT NULL DEFAULT false,
    period           text NOT NULL CHECK (period IN ('once', 'daily', 'weekly')),
    starts_at        timestamptz,
    ends_at          timestamptz,
    reward_currency  text NOT NULL REFERENCES currencies(code),
    reward_amount    bigint NOT NULL CHECK (reward_amount BETWEEN 1 AND 100000000),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'archived')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at),
    CHECK (NOT consecutive_days OR period = 'once' OR (period = 'weekly' AND target <= 7))
);
CREATE INDEX tasks_active_idx ON tasks (event_type) WHERE status = 'active';

-- One row per member, task and period ('once', a local day 'YYYY-MM-DD', or an ISO
-- week 'YYYY-Www'). `count` is events counted, or the current run of days.
CREATE TABLE task_progress (
    task_id      bigint NOT NULL REFERENCES tasks(id),
    member_id    bigint NOT NULL REFERENCES members(id),
    period_key   text NOT NULL CHECK (length(period_key) BETWEEN 4 AND 10),
    count        integer NOT NULL CHECK (count >= 0),
    last_day     date NOT NULL,
    completed_at timestamptz,
    -- The ledger entry of the reward.
    entry_id     bigint REFERENCES entries(id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, member_id, period_key)
);
CREATE INDEX task_progress_member_idx ON task_progress (member_id);
