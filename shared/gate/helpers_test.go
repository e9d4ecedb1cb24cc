package gate_test

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/ratebill/platform/shared/httpapi"
)

// withRequestID gives h the request middleware every function runs (request
// ids, problem logging), with logs discarded.
func withRequestID(h http.Handler) http.Handler {
	return httpapi.Middleware(h, slog.New(slog.NewJSONHandler(io.Discard, nil)), "")
}
