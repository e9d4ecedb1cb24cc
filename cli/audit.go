package cli

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) auditCommand() *cobra.Command {
	c := group("audit", "Read the audit log")
	c.AddCommand(a.auditTail())
	return c
}

func (a *app) auditTail() *cobra.Command {
	var (
		user     int64
		action   string
		limit    int
		follow   bool
		interval time.Duration
	)
	c := &cobra.Command{
		Use:   "tail [--user USER_ID] [--action ACTION] [--limit N] [--follow]",
		Short: "The newest audit entries, oldest first (GET /admin/audit)",
		Long: `The newest --limit audit entries, printed oldest first like tail(1).
--follow then polls every --interval and prints new entries as they are
written, until interrupted. With --json, tail prints the API's page (newest
first, as the API orders it); --json --follow prints one JSON entry a line,
oldest first.

Actions: key.create, key.rotate, key.revoke, user.suspend, user.reactivate,
user.limit.set, user.limit.clear, user.cap.set, user.cap.clear,
user.plan.set, plan.create, plan.update, token.create, token.revoke.`,
		Example: `  ratebill audit tail --user 42
  ratebill audit tail --action user.suspend --limit 100
  ratebill audit tail --follow`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100 {
				return usagef("--limit must be from 1 to 100")
			}
			if cmd.Flags().Changed("user") && user < 1 {
				return usagef("--user must be a positive user id")
			}
			if follow && interval < 100*time.Millisecond {
				return usagef("--interval must be at least 100ms")
			}
			api, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if user > 0 {
				q.Set("user", strconv.FormatInt(user, 10))
			}
			if action != "" {
				q.Set("action", action)
			}
			var page Page[AuditEntry]
			b, err := api.get(cmd.Context(), "/admin/audit", q, &page)
			if err != nil {
				return err
			}
			entries := slices.Clone(page.Items)
			slices.Reverse(entries) // oldest first
			switch {
			case a.json && !follow:
				a.emit(b)
				return nil
			case a.json:
				if err := a.emitEntries(entries); err != nil {
					return err
				}
			default:
				if err := writeAudit(a.opts.Stdout, entries, true); err != nil {
					return err
				}
			}
			if !follow {
				return nil
			}
			var last int64
			if len(page.Items) > 0 {
				last = page.Items[0].ID
			}
			return a.follow(cmd.Context(), api, q, last, interval)
		},
	}
	f := c.Flags()
	f.Int64Var(&user, "user", 0, "only entries about this user id")
	f.StringVar(&action, "action", "", "only entries of this action (e.g. user.suspend)")
	f.IntVar(&limit, "limit", 20, "entries to show first, 1 to 100")
	f.BoolVarP(&follow, "follow", "f", false, "keep polling for new entries until interrupted")
	f.DurationVar(&interval, "interval", 2*time.Second, "with --follow: time between polls")
	return c
}

// follow polls the audit log every interval and prints the entries newer
// than last, oldest first, until ctx ends (then it returns nil: an
// interrupted follow is how it is meant to end).
func (a *app) follow(ctx context.Context, api *api, q url.Values, last int64, interval time.Duration) error {
	q.Set("limit", "100")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fresh, err := a.newer(ctx, api, q, last)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(fresh) == 0 {
			continue
		}
		last = fresh[0].ID
		slices.Reverse(fresh)
		if a.json {
			err = a.emitEntries(fresh)
		} else {
			err = writeAudit(a.opts.Stdout, fresh, false)
		}
		if err != nil {
			return err
		}
	}
}

// newer pages back through the log (newest first) to the entry last and
// returns every entry after it, newest first.
func (a *app) newer(ctx context.Context, api *api, q url.Values, last int64) ([]AuditEntry, error) {
	q = cloneValues(q)
	q.Del("cursor")
	var out []AuditEntry
	for {
		var page Page[AuditEntry]
		if _, err := api.get(ctx, "/admin/audit", q, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Items {
			if e.ID <= last {
				return out, nil
			}
			out = append(out, e)
		}
		if page.NextCursor == nil {
			return out, nil
		}
		q.Set("cursor", *page.NextCursor)
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// emitEntries prints entries as JSON, one a line.
func (a *app) emitEntries(entries []AuditEntry) error {
	enc := json.NewEncoder(a.opts.Stdout)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}
