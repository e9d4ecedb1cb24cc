package serve

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/lazy"
)

// Lazy returns the handler a function registers with functions-framework-go
// (functions.HTTP in its init): Cloud Run's function contract, where the
// framework, not our main, owns the process. The dependencies and the
// handler are built from the environment on the first request, once; a
// configuration error answers that request 503 (and is retried by the
// next one). The cmd mains do not use it: they build everything at
// start-up and own their server (Main).
func Lazy(build func(*deps.Deps) (http.Handler, error)) http.HandlerFunc {
	v := lazy.New(func(context.Context) (http.Handler, error) {
		cfg, err := config.Load(os.Getenv)
		if err != nil {
			return nil, err
		}
		logger := httpapi.NewLogger(os.Stdout, cfg.LogLevel)
		d, err := deps.New(cfg, logger)
		if err != nil {
			return nil, err
		}
		return build(d)
	})
	return func(w http.ResponseWriter, r *http.Request) {
		h, err := v.Get(r.Context())
		if err != nil {
			httpapi.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				httpapi.Logger(r.Context()).ErrorContext(r.Context(), "configuration", "error", err.Error())
				w.Header().Set("Retry-After", "30")
				httpapi.Error(w, r, &shared.Error{Code: shared.EUnavailable, Message: "the service is misconfigured", Err: err})
			}), slog.Default(), "").ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}
}
