-- Plans, plan assignments and invoices (issue 13).
--
-- plans: what a customer buys (package pricing holds the model and its
-- validation; the database holds only what pricing.Plan.Validate
-- accepted). The row 'default' has from_config: its limit and price are
-- the deployment's API_RATE_LIMIT, API_RATE_WINDOW and BILLING_UNIT_PRICE,
-- read when it is used, so a fresh deployment bills as it always did.
-- limits is [{name, units, window_seconds, algorithm: fixed|sliding}];
-- the gate enforces several limits per plan in a later change.
CREATE TABLE plans (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    from_config    boolean     NOT NULL DEFAULT false,
    currency       text        CHECK (currency ~ '^[A-Z]{3}$'),
    fixed_fee      numeric     NOT NULL DEFAULT 0 CHECK (fixed_fee >= 0),
    included_units bigint      NOT NULL DEFAULT 0 CHECK (included_units >= 0),
    price          jsonb,
    limits         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plans_defined CHECK (from_config OR (currency IS NOT NULL AND price IS NOT NULL AND limits IS NOT NULL))
);
INSERT INTO plans (name, from_config) VALUES ('default', true);

-- Which plan a user is on, from when. A user without a row is on
-- 'default'. effective_from is a whole minute (the usage rollups are per
-- minute, so a period splits exactly at a plan change).
CREATE TABLE plan_assignments (
    user_id        bigint      NOT NULL REFERENCES users (id),
    effective_from timestamptz NOT NULL CHECK (effective_from = date_trunc('minute', effective_from)),
    plan_name      text        NOT NULL REFERENCES plans (name),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, effective_from)
);

-- Final invoices. A period's invoice is computed from the rollups while
-- the period is open and stored once, by the closing job, when it
-- closes; a stored closed invoice never changes (the trigger below), and
-- the primary key makes a second or concurrent close a no-op.
-- recorded_units are the period's own units at closing time; units that
-- reach the period's rollups later (late events) are carried into the
-- next period (carried_units there). plans is the snapshot of the plans
-- in effect and the units of each (segments), lines the line items.
CREATE TABLE invoices (
    user_id        bigint      NOT NULL,
    period         text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status         text        NOT NULL CHECK (status IN ('open', 'closed')),
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    plans          jsonb       NOT NULL,
    lines          jsonb       NOT NULL,
    requests       bigint      NOT NULL CHECK (requests >= 0),
    recorded_units bigint      NOT NULL CHECK (recorded_units >= 0),
    carried_units  bigint      NOT NULL CHECK (carried_units >= 0),
    subtotal       numeric(20, 2) NOT NULL CHECK (subtotal >= 0),
    total          numeric(20, 2) NOT NULL CHECK (total >= 0),
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, period)
);
CREATE INDEX invoices_period_idx ON invoices (period, user_id);

CREATE FUNCTION invoices_closed_are_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoice % of user % is closed and final', OLD.period, OLD.user_id
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER invoices_final BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW WHEN (OLD.status = 'closed') EXECUTE FUNCTION invoices_closed_are_final();
