CREATE TABLE categories (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id              UUID PRIMARY KEY,
    sku             TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    category_id     UUID REFERENCES categories (id) ON DELETE RESTRICT,
    price_cents     BIGINT NOT NULL CHECK (price_cents >= 0),
    currency        TEXT NOT NULL,
    -- Units that can still be ordered, and units held by orders not yet shipped or cancelled.
    stock_available INTEGER NOT NULL DEFAULT 0 CHECK (stock_available >= 0),
    stock_reserved  INTEGER NOT NULL DEFAULT 0 CHECK (stock_reserved >= 0),
    search          TSVECTOR GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', name), 'A') ||
                        setweight(to_tsvector('english', sku), 'A') ||
                        setweight(to_tsvector('english', description), 'B')) STORED,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX products_search ON products USING GIN (search);
CREATE INDEX products_category ON products (category_id, created_at, id);
CREATE INDEX products_listing ON products (created_at, id);

-- Stock held for an order; released when it is cancelled, committed when it ships.
CREATE TABLE reservations (
    order_id   UUID NOT NULL,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    state      TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);

-- Audit trail of every stock change, with the event that caused it when there was one.
CREATE TABLE stock_movements (
    id              BIGSERIAL PRIMARY KEY,
    product_id      UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    delta_available INTEGER NOT NULL,
    delta_reserved  INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    order_id        UUID,
    event_id        UUID,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_product ON stock_movements (product_id, id);

-- Exactly-once consumption (see panthera_kit::inbox).
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE consumer_offsets (
    consumer    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (consumer, topic)
);
