-- The mall (SPEC C1-C4, O1-O8): categories, products, code pools, addresses, orders
-- with their state history, reviews, low-stock alerts, payment provider secrets.

CREATE TABLE categories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 50),
    position   integer NOT NULL DEFAULT 100,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    brand               text NOT NULL DEFAULT '' CHECK (length(brand) <= 100),
    spec                text NOT NULL DEFAULT '' CHECK (length(spec) <= 200),
    model               text NOT NULL DEFAULT '' CHECK (length(model) <= 100),
    color               text NOT NULL DEFAULT '' CHECK (length(color) <= 50),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
    category_id         bigint REFERENCES categories(id),
    tags                text[] NOT NULL DEFAULT '{}',
    kind                text NOT NULL CHECK (kind IN ('physical', 'virtual', 'coupon', 'service')),
    currency            text NOT NULL DEFAULT 'points' REFERENCES currencies(code),
    points_price        bigint NOT NULL CHECK (points_price >= 0),
    cash_price_fen      bigint NOT NULL DEFAULT 0 CHECK (cash_price_fen >= 0),
    -- A special price in a window (flash sale, K4).
    special_points_price bigint CHECK (special_points_price >= 0),
    special_starts_at   timestamptz,
    special_ends_at     timestamptz,
    stock               bigint NOT NULL DEFAULT 0 CHECK (stock >= 0),
    low_stock_threshold bigint NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    -- Set when an alert was raised; cleared when stock goes back above the threshold.
    low_stock_alerted   boolean NOT NULL DEFAULT false,
    redeemed_count      bigint NOT NULL DEFAULT 0 CHECK (redeemed_count >= 0),
    sort_order          integer NOT NULL DEFAULT 0,
    starts_at           timestamptz,
    ends_at             timestamptz,
    status              text NOT NULL DEFAULT 'delisted' CHECK (status IN ('listed', 'delisted')),
    review_state        text NOT NULL DEFAULT 'pending' CHECK (review_state IN ('pending', 'approved')),
    per_member_limit    integer CHECK (per_member_limit > 0),
    -- Members below this level threshold cannot redeem (members-only products).
    min_level_threshold bigint NOT NULL DEFAULT 0 CHECK (min_level_threshold >= 0),
    images              text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (points_price > 0 OR cash_price_fen > 0),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX products_browse_idx ON products (status, review_state, category_id);
CREATE INDEX products_tags_idx ON products USING gin (tags);

-- Codes of virtual goods, issued automatically one per order.
CREATE TABLE product_codes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id      bigint NOT NULL REFERENCES products(id),
    code            text NOT NULL CHECK (length(code) BETWEEN 1 AND 200),
    issued_order_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, code)
);
CREATE INDEX product_codes_free_idx ON product_codes (product_id, id) WHERE issued_order_id IS NULL;

CREATE TABLE stock_alerts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id bigint NOT NULL REFERENCES products(id),
    stock      bigint NOT NULL,
    threshold  bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no       text NOT NULL UNIQUE,
    member_id      bigint NOT NULL REFERENCES members(id),
    product_id     bigint NOT NULL REFERENCES products(id),
    product_name   text NOT NULL,
    kind           text NOT NULL,
    quantity       integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    currency       text NOT NULL,
    points_amount  bigint NOT NULL CHECK (points_amount >= 0),
    cash_fen       bigint NOT NULL CHECK (cash_fen >= 0),
    status         text NOT NULL CHECK (status IN ('pending_payment', 'pending_review', 'pending_shipment',
                                                   'shipped', 'completed', 'cancelled', 'refunded')),
    -- Points are debited at once (points only) or held until the cash is paid.
    debit_entry_id bigint REFERENCES entries(id),
    hold_id        bigint REFERENCES holds(id),
    pay_deadline   timestamptz,
    payment_ref    text,
    address        jsonb,
    code           text,
    carrier        text,
    tracking_no    text,
    tracking       jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_member_idx ON orders (member_id, id DESC);
CREATE INDEX orders_status_idx ON orders (status, id DESC);
CREATE INDEX orders_product_member_idx ON orders (product_id, member_id) WHERE status NOT IN ('cancelled', 'refunded');
CREATE INDEX orders_unpaid_idx ON orders (pay_deadline) WHERE status = 'pending_payment';

CREATE TABLE order_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders(id),
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,
    note        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order_idx ON order_history (order_id, id);

CREATE TABLE reviews (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL UNIQUE REFERENCES orders(id),
    member_id  bigint NOT NULL REFERENCES members(id),
    product_id bigint NOT NULL REFERENCES products(id),
    rating     integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body       text NOT NULL DEFAULT '' CHECK (length(body) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_product_idx ON reviews (product_id, id DESC);

CREATE TABLE addresses (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint NOT NULL REFERENCES members(id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    phone      text NOT NULL CHECK (phone ~ '^\+?[0-9]{6,15}$'),
    region     text NOT NULL CHECK (length(region) BETWEEN 1 AND 100),
    detail     text NOT NULL CHECK (length(detail) BETWEEN 1 AND 200),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_member_idx ON addresses (member_id);

-- Shared secrets of provider integrations (the payment callback's HMAC key).
CREATE TABLE provider_secrets (
    name       text PRIMARY KEY,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
