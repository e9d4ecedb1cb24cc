package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable records the applied migration version.
const versionTable = "schema_version"

// Migrations returns the embedded migration files, for tests that need
// their content (for example to name a template database after them).
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Migrate applies the embedded migrations to the database at databaseURL.
// It is safe to run from many instances at once: tern holds a Postgres
// advisory lock for the whole run.
func Migrate(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, NormalizeURL(databaseURL))
	if err != nil {
		return mapError("connecting for migrations", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return migrateConn(ctx, conn)
}

// MigratePool applies the embedded migrations on a connection of pool.
func MigratePool(ctx context.Context, pool *pgxpool.Pool) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return mapError("acquiring a connection for migrations", err)
	}
	defer c.Release()
	return migrateConn(ctx, c.Conn())
}

func migrateConn(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return mapError("preparing migrations", err)
	}
	if err := m.LoadMigrations(Migrations()); err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return mapError("migrating", err)
	}
	return nil
}

// Grant gives each role the privileges the functions need on every table
// (for Cloud SQL IAM database users, which own nothing). Role names are
// quoted as identifiers.
func Grant(ctx context.Context, pool *pgxpool.Pool, roles []string) error {
	for _, r := range roles {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		id := pgx.Identifier{r}.Sanitize()
		for _, q := range []string{
			"GRANT USAGE ON SCHEMA public TO " + id,
			"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO " + id,
			"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + id,
		} {
			if _, err := pool.Exec(ctx, q); err != nil {
				return mapError("granting to "+r, err)
			}
		}
	}
	return nil
}
