-- Settlement of an alliance's shared points (SPEC A4, issue 12). Used in alliance schemas
-- (a_<id>); every schema has the same DDL, so merchant schemas hold these tables empty.
--
-- Who did what: every entry of the alliance ledger names the mall that wrote it in its
-- actor ("tenant:5/partner:3", see `alliance::book`); `mall_id` reads it back. A lot's
-- issuer is the mall of the entry that created it.
ALTER TABLE entries ADD COLUMN mall_id bigint
    GENERATED ALWAYS AS (substring(actor FROM '^tenant:([0-9]+)/')::bigint) STORED;
CREATE INDEX entries_created_idx ON entries (created_at, id);

-- A refund gives points back to the lots its debit drew on (`ledger::post::return_to_lots`):
-- each portion given back, or forfeited because its lot had expired meanwhile, is kept
-- here so settlement can take the redemption back from the right issuer.
CREATE TABLE lot_returns (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debit_entry_id bigint NOT NULL REFERENCES entries (id),
    -- The refund's entry (none when everything given back had expired).
    entry_id       bigint REFERENCES entries (id),
    lot_id         bigint NOT NULL REFERENCES lots (id),
    amount         bigint NOT NULL CHECK (amount > 0),
    forfeited      boolean NOT NULL,
    created_at     timestamptz NOT NULL,
    -- The statement that settled it (set once, when that statement closes).
    statement_id   bigint
);
CREATE INDEX lot_returns_open_idx ON lot_returns (created_at) WHERE statement_id IS NULL;

-- The alliance's day for settlement periods.
ALTER TABLE alliance_terms ADD COLUMN time_zone text NOT NULL DEFAULT 'Asia/Shanghai'
    CHECK (length(time_zone) BETWEEN 1 AND 64);

-- A closed period: frozen figures, never recomputed. It settles every entry written
-- before its end that no earlier statement settled (an entry committed after a period
-- closed goes to the next one).
CREATE TABLE settlement_statements (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- "2026-11" (a month) or "2026-11-30" (a day), in `time_zone`.
    period          text NOT NULL UNIQUE CHECK (period ~ '^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$'),
    time_zone       text NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL CHECK (ends_at > starts_at),
    points_per_yuan integer NOT NULL CHECK (points_per_yuan > 0),
    closed_by       text NOT NULL,
    closed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX settlement_statements_end_idx ON settlement_statements (ends_at);

-- Which statement settled each shared entry.
CREATE TABLE settlement_marks (
    entry_id     bigint PRIMARY KEY REFERENCES entries (id),
    statement_id bigint NOT NULL REFERENCES settlement_statements (id)
);
CREATE INDEX settlement_marks_statement_idx ON settlement_marks (statement_id, entry_id);

-- Per mall (NULL: entries written by no mall, e.g. by the alliance itself).
CREATE TABLE settlement_lines (
    statement_id   bigint NOT NULL REFERENCES settlement_statements (id),
    mall_id        bigint,
    issued         bigint NOT NULL,
    revoked        bigint NOT NULL,
    redeemed       bigint NOT NULL,
    returned       bigint NOT NULL,
    expired        bigint NOT NULL,
    receivable_fen bigint NOT NULL,
    payable_fen    bigint NOT NULL,
    net_fen        bigint NOT NULL
);
CREATE UNIQUE INDEX settlement_lines_idx ON settlement_lines (statement_id, coalesce(mall_id, 0));

-- Who owes whom: points issued by `issuer` and redeemed (net of returns) at `redeemer`.
CREATE TABLE settlement_pairs (
    statement_id bigint NOT NULL REFERENCES settlement_statements (id),
    issuer       bigint,
    redeemer     bigint NOT NULL,
    points       bigint NOT NULL,
    value_fen    bigint NOT NULL
);
CREATE UNIQUE INDEX settlement_pairs_idx ON settlement_pairs (statement_id, coalesce(issuer, 0), redeemer);
