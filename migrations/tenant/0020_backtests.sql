-- What would this rule have cost? (issue 13 point 11)
--
-- A backtest replays the mall's recorded events of a period through one rule version (a
-- saved one, or a draft script) without writing to the ledger; it runs in the background
-- and keeps its progress and its result here for the portal to show.

CREATE TABLE rule_backtests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The saved rule and versions replayed; NULL rule_id for a draft script.
    rule_id         bigint REFERENCES rules(id),
    rule_version    integer,
    params_version  integer,
    -- What ran: the script (a copy, so a draft is kept), its parameters, its event type.
    script          text NOT NULL,
    params          jsonb NOT NULL CHECK (jsonb_typeof(params) = 'object'),
    event_type      text NOT NULL,
    -- The period: local days of the mall, both included.
    from_day        date NOT NULL,
    to_day          date NOT NULL CHECK (to_day >= from_day),
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    events_total    bigint NOT NULL DEFAULT 0,
    events_done     bigint NOT NULL DEFAULT 0,
    result          jsonb,
    error           text,
    created_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The runner touches it as it goes; a run that stopped touching it was interrupted.
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX rule_backtests_rule_idx ON rule_backtests (rule_id, id DESC);
-- The replay reads a period's events by occurred_at without an index of its own: one
-- scan per page in the background, rather than a cost on every event written.
