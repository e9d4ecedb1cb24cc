-- Spend caps (issue 13): the most a user's calendar month (UTC) may cost,
-- in the deployment's currency; NULL: no cap. The gate converts it into
-- units through the user's plan (pricing.Plan.UnitsWithin) and refuses,
-- before serving, a call whose cost would take the month over it.
ALTER TABLE users ADD COLUMN spend_cap numeric(20, 2) CHECK (spend_cap >= 0);
