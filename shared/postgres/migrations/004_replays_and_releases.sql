-- Bounded replays and release on upstream failure.
--
-- replays counts the times a recorded request id came again. A replay is
-- answered with the first decision and costs nothing, at most 3 times
-- and within 24 hours of the first record (package gate); after that
-- the id is refused, so a replayed id never buys unbounded service.
--
-- release_hash is the SHA-256 of the release token an admitted
-- POST /verify answer carried; only its holder can release the call
-- (never the request id, which the end client knows). released_at marks
-- a released call: it is subtracted from the totals and rollups in the
-- same statement and excluded where bills count events.
ALTER TABLE usage_events
    ADD COLUMN replays integer NOT NULL DEFAULT 0 CHECK (replays >= 0),
    ADD COLUMN release_hash bytea CHECK (release_hash IS NULL OR length(release_hash) = 32),
    ADD COLUMN released_at timestamptz;

-- Partial: calls without a token (GET /usage) cost no index entry.
CREATE UNIQUE INDEX usage_events_release_hash_key ON usage_events (release_hash) WHERE release_hash IS NOT NULL;
