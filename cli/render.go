package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// table writes aligned columns; Flush writes them out.
func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		// A tab or newline in a name would break the columns.
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// when is a time for a table, in UTC to the second; "-" for none.
func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func limitText(l *Limit) string {
	if l == nil {
		return "default"
	}
	return fmt.Sprintf("%d per %d s", l.Limit, l.Window)
}

func status(u User) string {
	if u.SuspendedAt != nil {
		return "suspended"
	}
	return "active"
}

func keyState(k Key, now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case k.ExpiresAt != nil && !k.ExpiresAt.After(now):
		return "expired"
	}
	return "active"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// writeUsers is the table of users list.
func writeUsers(w io.Writer, users []User) error {
	tw := table(w, "ID", "USERNAME", "EMAIL", "STATUS", "LIMIT", "CREATED")
	for _, u := range users {
		row(tw, id(u.ID), u.Username, u.Email, status(u), limitText(u.Limit), when(&u.CreatedAt))
	}
	return tw.Flush()
}

// writeUser is a user as a list of fields (the changes answer with it),
// then the extra ones.
func writeUser(w io.Writer, u User, extra ...[2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "id", id(u.ID))
	row(tw, "username", u.Username)
	row(tw, "email", u.Email)
	row(tw, "created", when(&u.CreatedAt))
	st := status(u)
	if u.SuspendedAt != nil {
		reason := ""
		if u.SuspendedReason != nil {
			reason = *u.SuspendedReason
		}
		st = fmt.Sprintf("suspended since %s: %s", when(u.SuspendedAt), reason)
	}
	row(tw, "status", st)
	row(tw, "limit", limitText(u.Limit))
	for _, e := range extra {
		row(tw, e[0], e[1])
	}
	return tw.Flush()
}

// writeUserDetail is users show: the user, its usage and its keys.
func writeUserDetail(w io.Writer, d UserDetail, now time.Time) error {
	usage := fmt.Sprintf("%d requests, %d units", d.Usage.TotalRequests, d.Usage.TotalUnits)
	extra := [][2]string{{"usage", usage}}
	if d.Plan != nil {
		plan := d.Plan.Plan
		if d.Plan.EffectiveFrom != nil {
			plan += " since " + when(d.Plan.EffectiveFrom)
		}
		extra = append(extra, [2]string{"plan", plan})
	}
	if err := writeUser(w, d.User, extra...); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Keys) == 0 {
		_, err := fmt.Fprintln(w, "no keys")
		return err
	}
	return writeKeys(w, d.Keys, now)
}

func writeKeys(w io.Writer, keys []Key, now time.Time) error {
	tw := table(w, "KEY ID", "NAME", "PREFIX", "STATE", "CREATED", "EXPIRES", "LAST USED")
	for _, k := range keys {
		row(tw, id(k.ID), orDash(k.Name), k.APIKeyPrefix, keyState(k, now), when(&k.CreatedAt), when(k.ExpiresAt), when(k.LastUsedAt))
	}
	return tw.Flush()
}

func writeTokens(w io.Writer, tokens []Token) error {
	tw := table(w, "ID", "NAME", "SCOPE", "PREFIX", "STATE", "CREATED", "LAST USED")
	for _, t := range tokens {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked " + when(t.RevokedAt)
		}
		row(tw, id(t.ID), t.Name, t.Scope, t.TokenPrefix, state, when(&t.CreatedAt), when(t.LastUsedAt))
	}
	return tw.Flush()
}

// writeAudit is audit entries in the order given, one line each.
func writeAudit(w io.Writer, entries []AuditEntry, header bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		row(tw, "ID", "AT", "ACTOR", "ACTION", "USER", "TARGET", "REMOTE ADDR")
	}
	for _, e := range entries {
		actor := e.Actor.Type
		if e.Actor.Name != "" {
			actor += ":" + e.Actor.Name
		}
		if e.Actor.ID != nil {
			actor += fmt.Sprintf("(%d)", *e.Actor.ID)
		}
		user := "-"
		if e.UserID != nil {
			user = id(*e.UserID)
		}
		row(tw, id(e.ID), when(&e.At), actor, e.Action, user, orDash(e.Target), orDash(e.RemoteAddr))
	}
	return tw.Flush()
}
