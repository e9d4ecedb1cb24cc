// Package stack gives tests real infrastructure: a fresh migrated Postgres
// database per test, private Redis servers that can be stopped and started
// again, and the four function binaries running as separate processes.
//
// Postgres comes from the server named by TEST_DATABASE_URL, which
// `make test` (scripts/test.sh, through tools/cmd/testenv) sets to a private
// server it starts for the run. Postgres is shared/testdb.DatabaseURL
// (which the shared module's own tests use) made strict: on first use in a
// test binary it builds a template database migrated with the platform's
// own migrations, named after a hash of the migration files, under an
// advisory lock so test binaries running in parallel build it once; each
// test then gets CREATE DATABASE ... TEMPLATE, dropped when the test ends.
// Tests that each use their own database may run in parallel.
//
// A typical end-to-end test:
//
//	func TestSignUpAndUse(t *testing.T) {
//		t.Parallel()
//		rdb := stack.Redis(t)
//		s := stack.Start(t, stack.Options{
//			DatabaseURL: stack.Postgres(t),
//			RedisURL:    rdb.URL,
//			Env:         map[string]string{"API_RATE_LIMIT": "50"},
//			Replicas:    map[string]int{routes.Usage: 2},
//		})
//		base := s.Instances[routes.Users][0]
//		// ... requests against base; rdb.Stop() to test an outage ...
//	}
package stack
