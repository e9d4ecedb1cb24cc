package stack

import (
	"os"
	"testing"

	"github.com/ratebill/platform/shared/testdb"
)

// DatabaseURLVariable names the environment variable holding the URL of
// the Postgres server tests clone their databases on. The role needs
// CREATEDB (testdb's server gives the superuser).
const DatabaseURLVariable = "TEST_DATABASE_URL"

// Postgres returns the URL of a fresh, migrated, empty database of the
// test's own, cloned from the template on the server named by
// TEST_DATABASE_URL, and dropped when the test ends. Unlike
// shared/testdb, which it uses, it fails the test when TEST_DATABASE_URL
// is unset, even outside CI: a test that starts function processes is
// never meant to be skipped.
func Postgres(t testing.TB) string {
	t.Helper()
	if os.Getenv(DatabaseURLVariable) == "" {
		t.Fatalf("%s is not set: run the tests through `make test` (scripts/test.sh starts a private Postgres and sets it), or set it to the URL of a Postgres role that may create databases", DatabaseURLVariable)
	}
	return testdb.DatabaseURL(t)
}
