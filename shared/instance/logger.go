package instance

import (
	"log/slog"
	"os"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/httpapi"
)

// NewLogger returns the Cloud Logging JSON logger for cfg, on stdout.
func NewLogger(cfg config.Config) *slog.Logger {
	return httpapi.NewLogger(os.Stdout, cfg.LogLevel)
}
