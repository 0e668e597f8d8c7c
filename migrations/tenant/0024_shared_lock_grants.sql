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

-- Won lottery goods become orders (issue 12 point 9, SPEC K3). An item prize may name a
-- product of the catalogue: a draw that wins it takes one from the product's stock and
-- creates an order for the member (zero points), fulfilled like any other; the draw
-- names its order (one order per draw).
ALTER TABLE lottery_prizes ADD COLUMN product_id bigint REFERENCES products (id);
ALTER TABLE lottery_prizes ADD CONSTRAINT lottery_prizes_goods_are_items CHECK (product_id IS NULL OR kind = 'item');
ALTER TABLE lottery_draws ADD COLUMN order_id bigint REFERENCES orders (id);
CREATE UNIQUE INDEX lottery_draws_order_idx ON lottery_draws (order_id) WHERE order_id IS NOT NULL;
