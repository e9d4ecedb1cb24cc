-- Keys a team manages, suspension, per-user limit overrides, operator
-- credentials and the audit log (issue 12).
--
-- api_keys: a user has many keys. name is the customer's label;
-- expires_at is set by POST /keys {"expires_in"} or by a rotation's
-- grace period (the replaced key keeps working until then); last_used_at
-- is approximate: written in batches, never per request.
ALTER TABLE api_keys
    ADD COLUMN name text NOT NULL DEFAULT '' CHECK (length(name) <= 64),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN replaced_by bigint REFERENCES api_keys (id);
-- Active keys of a user (for the per-user key cap and GET /keys).
CREATE INDEX api_keys_user_active_idx ON api_keys (user_id, id) WHERE revoked_at IS NULL;

-- users: suspension and a per-user limit override (units per window,
-- seconds), set together or not at all. version increases with every
-- change that must reach cached principals (revocation, expiry change,
-- suspension, limit): the same number is published to Redis, and an
-- instance whose cached principal is older revalidates it.
ALTER TABLE users
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN suspended_reason text CHECK (length(suspended_reason) <= 500),
    ADD COLUMN limit_units bigint CHECK (limit_units > 0),
    ADD COLUMN limit_window_seconds integer CHECK (limit_window_seconds > 0),
    ADD COLUMN version bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT users_limit_override_whole CHECK ((limit_units IS NULL) = (limit_window_seconds IS NULL));

-- Operator credentials: Authorization: Bearer rbo_…, stored only as the
-- SHA-256 of the token. scope 'admin' may change things, 'viewer' only
-- reads.
CREATE TABLE operator_tokens (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    token_hash     bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    display_prefix text        NOT NULL,
    scope          text        NOT NULL CHECK (scope IN ('admin', 'viewer')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     bigint      REFERENCES operator_tokens (id),
    revoked_at     timestamptz,
    last_used_at   timestamptz
);

-- The audit log: every operator action and every key lifecycle event,
-- written in the same transaction as the change. actor_type 'operator'
-- names an operator token, 'user' a customer acting on their own keys,
-- 'system' the platform itself (the bootstrap operator token).
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_type  text        NOT NULL CHECK (actor_type IN ('operator', 'user', 'system')),
    actor_id    bigint,
    actor_name  text        NOT NULL DEFAULT '',
    action      text        NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    user_id     bigint,
    target      text        NOT NULL DEFAULT '',
    remote_addr text        NOT NULL DEFAULT '',
    request_id  text        NOT NULL DEFAULT '',
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
