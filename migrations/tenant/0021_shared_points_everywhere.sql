-- Shared points everywhere private points work (issue 12, point 4). A hold of the alliance's shared currency keeps its row in the mall (it is the mall's
-- checkout) while its points and entries live in the alliance schema: such a
-- row names its alliance entry instead of an entry of the mall, and has no account here
-- (a shared currency never gets one in a mall's schema, tenant migration 0006).
ALTER TABLE holds ALTER COLUMN entry_id DROP NOT NULL;
ALTER TABLE holds ADD COLUMN alliance_entry_id bigint;
ALTER TABLE holds ADD CONSTRAINT holds_one_ledger CHECK ((entry_id IS NULL) <> (alliance_entry_id IS NULL));
ALTER TABLE holds DROP CONSTRAINT holds_member_id_currency_fkey;
ALTER TABLE holds ADD CONSTRAINT holds_member_fkey FOREIGN KEY (member_id) REFERENCES members (id);

-- A lot made by a transfer keeps the mall that issued the points it came from, so
-- settlement charges their redemption to that mall (null: the mall of the lot's entry).
ALTER TABLE lots ADD COLUMN issuer_mall_id bigint;

-- Shared points can be transferred between members of the alliance (within the sending
-- mall's limits).
UPDATE currencies SET transferable = true WHERE shared;
