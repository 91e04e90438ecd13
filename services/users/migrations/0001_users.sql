CREATE TABLE users (
    id            UUID PRIMARY KEY,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    -- Stored trimmed and lower-cased, so the unique index is case-insensitive.
    email         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'pending')),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_listing ON users (created_at, id);
CREATE INDEX users_status_listing ON users (status, created_at, id);

-- Transactional outbox (see panthera_kit::outbox).
CREATE TABLE outbox (
    position     BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
