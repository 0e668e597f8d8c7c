-- A flash sale's orders no longer lock their product row. A foreign key check takes
-- FOR KEY SHARE on the referenced row; with hundreds of orders of one product in flight
-- those locks pile up in one multixact that every new order, every read of the product
-- and the stock update copy and search (measured: the selling phase waiting on
-- MultiXactMemberSLRU). Products are never deleted (a merchant unlists them), so the
-- reference is kept by that rule instead: a new order must name an existing product
-- (checked without a lock where its cost is read) and deleting a product is refused.
ALTER TABLE orders DROP CONSTRAINT orders_product_id_fkey;
ALTER TABLE stock_reservations DROP CONSTRAINT stock_reservations_product_id_fkey;

CREATE OR REPLACE FUNCTION orders_cost() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unit bigint;
BEGIN
    SELECT p.cost_price_fen INTO unit FROM products p WHERE p.id = NEW.product_id;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format('no product %s', NEW.product_id);
    END IF;
    NEW.cost_fen := unit * NEW.quantity;
    RETURN NEW;
END $$;

CREATE FUNCTION products_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE restrict_violation USING MESSAGE = 'products are never deleted (orders name them): unlist it instead';
END $$;
CREATE TRIGGER products_kept BEFORE DELETE ON products FOR EACH ROW EXECUTE FUNCTION products_kept();
