// Package postgres is the storage boundary: the connection pool (plain
// DATABASE_URL, or Cloud SQL through cloud.google.com/go/cloudsqlconn),
// the embedded schema migrations, and every query the platform runs.
//
// Errors leaving the package are the application's own (*shared.Error),
// so nothing above it interprets a database error: ENotFound for no rows,
// EConflict naming the field for a unique violation (SQLSTATE 23505), and
// EUnavailable for anything that means the database could not be reached
// or did not answer in time. Callers never see pgx types.
//
// # Usage writes
//
// WriteUsage stores a whole batch of usage events in one statement: the
// events (ON CONFLICT DO NOTHING on (user_id, request_id), so a retried
// write is idempotent), the per-user running totals and the per-minute
// rollups, all in one implicit transaction. Rollups are upserted in
// (user_id, minute) order so concurrent batches from many instances take
// row locks in the same order and cannot deadlock.
//
// # Billing
//
// A bill for [start, end] sums the whole minutes inside the period from
// usage_minutes and counts events only in the two partial minutes at its
// edges, so it is exact and costs at most two minutes of one user's
// events.
package postgres
