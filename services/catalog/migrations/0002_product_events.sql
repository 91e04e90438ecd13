-- Every change to a product bumps its version, which its events carry: the search index applies
-- them with external versioning, so a replayed or late event never overwrites a newer one.
ALTER TABLE products ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Transactional outbox of product events (see panthera_kit::outbox).
CREATE TABLE outbox (
    position     BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    traceparent  TEXT
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
