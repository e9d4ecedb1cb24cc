-- Usage history (issue 15): denials in the minute rollups, and an index
-- for the operator's all-customer aggregates.
--
-- denied counts the calls refused by a user's rate limit in that minute.
-- They are not billed, so they are not written per request (an abuser
-- must not be able to turn denials into Postgres writes): each instance
-- counts them in memory per (user, minute) and adds its counts in one
-- statement at most every USAGE_DENIED_FLUSH seconds, and at shutdown
-- (package meter, Denials). A crash loses the counts not yet written, and
-- a minute's denials may land a flush interval late: approximate by
-- design. A row may hold only denials (requests = units = 0); every sum
-- of requests or units is unchanged by such rows.
--
-- Adding a column with a constant default rewrites no table.
ALTER TABLE usage_minutes
    ADD COLUMN denied bigint NOT NULL DEFAULT 0 CHECK (denied >= 0);

-- GET /admin/usage/history and /admin/usage/top read every user's rows of
-- a time range. The primary key (user_id, minute) serves one user's
-- ranges only. One index entry per user and minute, not per request.
CREATE INDEX usage_minutes_minute ON usage_minutes (minute);
