-- Issuing budgets of an alliance's malls (SPEC A3, issue 12). Used in alliance schemas
-- (a_<id>); every schema has the same DDL, so merchant schemas hold these tables empty.
-- A mall's budget is in fen; every shared point it issues costs
--   points × (100 fen / points_per_yuan) × rate_bp / 10000   (rounded up)
-- and the budget's balance is always the sum of its entries (`ledger verify`).
CREATE TABLE alliance_terms (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- Clearing value of the shared currency: this many points are worth one yuan.
    points_per_yuan integer NOT NULL DEFAULT 100 CHECK (points_per_yuan BETWEEN 1 AND 1000000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE budgets (
    tenant_id bigint PRIMARY KEY,
    balance_fen bigint NOT NULL DEFAULT 0 CHECK (balance_fen >= 0),
    -- Share of the issued points' clearing value the mall bears, in basis points
    -- (1500 = 15%).
    rate_bp integer NOT NULL DEFAULT 1500 CHECK (rate_bp BETWEEN 0 AND 100000),
    -- Below this balance the mall is alerted (0: never).
    low_threshold_fen bigint NOT NULL DEFAULT 0 CHECK (low_threshold_fen >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE budget_entries (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES budgets (tenant_id),
    amount_fen bigint NOT NULL CHECK (amount_fen <> 0),
    kind text NOT NULL CHECK (kind IN ('top_up', 'issue')),
    -- For an issue: the shared points issued and the alliance ledger entry behind them.
    points bigint,
    ledger_entry_id bigint REFERENCES entries (id),
    balance_after_fen bigint NOT NULL CHECK (balance_after_fen >= 0),
    actor text NOT NULL,
    memo text NOT NULL DEFAULT '' CHECK (length(memo) <= 500),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_entries_tenant_idx ON budget_entries (tenant_id, id);
