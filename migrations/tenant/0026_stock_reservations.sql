-- Stock reservations (flash sales): a redemption takes its stock first, in a short
-- transaction of its own committed without waiting for the WAL flush, so the product row
-- every buyer queues on is held for microseconds instead of a whole durable commit. The
-- order's own transaction consumes (deletes) the reservation and commits durably, which
-- also makes the reservation durable (the WAL is flushed in order). A reservation nobody
-- consumed (the order failed, the server died between the two) is returned to the stock:
-- at once by the request that made it, else by the mall's jobs once it is stale.
CREATE TABLE stock_reservations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id bigint NOT NULL REFERENCES products (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_reservations_by_age ON stock_reservations (created_at);
