-- The shared currency of an alliance (SPEC A1, C6): its code and name. Its accounts live
-- in the alliance's own schema (a_<id>, same DDL as a merchant's); each merchant of the
-- alliance lists the currency with `shared = true`, so its products can be priced in it.
ALTER TABLE control.alliances
    ADD COLUMN currency_code text NOT NULL DEFAULT 'alliance_points' CHECK (currency_code ~ '^[a-z][a-z0-9_]{1,31}$'),
    ADD COLUMN currency_name text NOT NULL DEFAULT '联盟积分' CHECK (length(currency_name) BETWEEN 1 AND 32);
