package instance

import (
	"context"
	"errors"
	"testing"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/usage"
)

func TestDependencyError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode shared.Code
		wantMsg  string
	}{
		{"application error kept", shared.Errorf(shared.EUnauthorized, "who"), shared.EUnauthorized, "who"},
		{"dependency down", errors.New("dial tcp: refused"), shared.EUnavailable, "postgres is unavailable; retry later"},
		{"instance draining", ErrClosed, shared.EUnavailable, "this instance is shutting down; retry"},
		{"recorder closed", usage.ErrClosed, shared.EUnavailable, "this instance is shutting down; retry"},
	}
	for _, tt := range tests {
		err := dependencyError("postgres", tt.err)
		var e *shared.Error
		if !errors.As(err, &e) || e.Code != tt.wantCode || e.Message != tt.wantMsg {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestClosedInstanceRefuses(t *testing.T) {
	t.Parallel()
	i := New(config.Defaults(), nil)
	if err := i.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := i.Store(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Store after Close: %v", err)
	}
	if _, err := i.Redis(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Redis after Close: %v", err)
	}
}
