-- Lock grants of the alliance's shared currency (issue 12, point 4). The grant is the
-- mall's (partners and rules name it by its id here, rules read it in `member.locks`),
-- while its points live in the alliance's ledger: such a row names the alliance's grant
-- (`alliance_grant_id`) instead of an entry of the mall, and has no account here (a
-- shared currency never gets one in a mall's schema, tenant migration 0006). In an
-- alliance schema (a_<id>) the grant that `ledger verify` sums against the locked
-- balance is kept with the granting mall (`mall_id`), whose jobs release it.
ALTER TABLE lock_grants ALTER COLUMN entry_id DROP NOT NULL;
ALTER TABLE lock_grants ADD COLUMN alliance_grant_id bigint;
ALTER TABLE lock_grants ADD COLUMN mall_id bigint;
ALTER TABLE lock_grants ADD CONSTRAINT lock_grants_one_ledger CHECK ((entry_id IS NULL) <> (alliance_grant_id IS NULL));
ALTER TABLE lock_grants DROP CONSTRAINT lock_grants_member_id_currency_fkey;
ALTER TABLE lock_grants ADD CONSTRAINT lock_grants_member_fkey FOREIGN KEY (member_id) REFERENCES members (id);
