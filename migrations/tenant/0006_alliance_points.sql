-- Alliance malls (SPEC A2, C6). A merchant of an alliance lists the alliance's currency
-- with `shared = true`: balances in it live in the alliance schema (a_<id>), whose
-- `members` are the alliance's identities. The alliance schema has this same DDL, so
-- the ledger code and `ledger verify` run there unchanged.
ALTER TABLE currencies ADD COLUMN shared boolean NOT NULL DEFAULT false;

-- One local member per alliance identity.
CREATE UNIQUE INDEX members_alliance_member_idx ON members (alliance_member_id) WHERE alliance_member_id IS NOT NULL;

-- An order paid in shared points names its debit in the alliance schema's ledger.
ALTER TABLE orders ADD COLUMN alliance_entry_id bigint;

-- A shared currency never gets an account in a merchant's schema: a code path that
-- forgot to go to the alliance schema fails here instead of splitting a balance.
CREATE FUNCTION refuse_shared_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM currencies WHERE code = NEW.currency AND shared) THEN
        RAISE EXCEPTION 'currency % is shared by the alliance; its accounts live in the alliance schema', NEW.currency
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_not_shared';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_not_shared BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION refuse_shared_account();
