package loadtest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// startProgress shows how far the request phase is until the returned
// function is called: a bar redrawn in place on a terminal, plain lines
// every ProgressEvery otherwise.
func startProgress(cfg Config, done *atomic.Int64) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	every := cfg.ProgressEvery
	if cfg.Terminal {
		every = 200 * time.Millisecond
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-quit:
				n := done.Load()
				line := progressLine(cfg, n, time.Since(start), float64(n)/max(time.Since(start).Seconds(), 1e-9))
				if cfg.Terminal {
					fmt.Fprintf(cfg.Progress, "\r%s\n", line)
				} else {
					fmt.Fprintln(cfg.Progress, line)
				}
				return
			case now := <-t.C:
				n := done.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				line := progressLine(cfg, n, now.Sub(start), rate)
				if cfg.Terminal {
					fmt.Fprintf(cfg.Progress, "\r%s\x1b[K", line)
				} else {
					fmt.Fprintln(cfg.Progress, line)
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

func progressLine(cfg Config, n int64, elapsed time.Duration, rate float64) string {
	frac := float64(n) / float64(cfg.Requests)
	if cfg.Terminal {
		const width = 30
		fill := int(frac * width)
		bar := strings.Repeat("=", fill)
		if fill < width {
			bar += ">" + strings.Repeat(" ", width-fill-1)
		}
		return fmt.Sprintf("[%s] %3.0f%% %d/%d  %.0f req/s  %s", bar, frac*100, n, cfg.Requests, rate, elapsed.Truncate(100*time.Millisecond))
	}
	return fmt.Sprintf("progress: %d/%d (%.0f%%) %.0f req/s, %s elapsed", n, cfg.Requests, frac*100, rate, elapsed.Truncate(100*time.Millisecond))
}
