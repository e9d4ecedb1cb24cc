-- Users and their API keys. Only the SHA-256 of a key is stored, with a
-- short display prefix; uniqueness of usernames and emails ignores case.
CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username   text        NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    email      text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE api_keys (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash       bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    display_prefix text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

-- One row per metered request. The request id is unique per user, so a
-- retried write never counts twice.
CREATE TABLE usage_events (
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    request_id text        NOT NULL CHECK (length(request_id) BETWEEN 1 AND 128),
    endpoint   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, request_id)
);
CREATE INDEX usage_events_user_time_idx ON usage_events (user_id, created_at);

-- Rollups maintained in the same statement as the events, so totals and
-- bills are read in constant time, never by counting a user's events.
CREATE TABLE usage_totals (
    user_id        bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    total_requests bigint NOT NULL CHECK (total_requests >= 0)
);

CREATE TABLE usage_minutes (
    user_id  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    minute   timestamptz NOT NULL,
    requests bigint      NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (user_id, minute)
);
