package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) usersCommand() *cobra.Command {
	c := group("users", "List, show, suspend, limit users and put them on plans")
	c.AddCommand(a.usersList(), a.usersShow(), a.usersSuspend(), a.usersReactivate(), a.usersLimit(), a.usersPlan())
	return c
}

func (a *app) usersList() *cobra.Command {
	var (
		search, cursor string
		limit          int
		all            bool
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List users in id order (GET /admin/users)",
		Example: `  ratebill users list --search acme
  ratebill users list --all --json | jq '.items[].email'`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100 {
				return usagef("--limit must be from 1 to 100")
			}
			if all && cursor != "" {
				return usagef("--all starts at the first page: leave out --cursor")
			}
			api, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if search != "" {
				q.Set("q", search)
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var users []User
			var raw []json.RawMessage // --all --json: the items as the API wrote them
			for {
				var page Page[User]
				b, err := api.get(cmd.Context(), "/admin/users", q, &page)
				if err != nil {
					return err
				}
				if !all {
					if a.json {
						a.emit(b)
						return nil
					}
					if err := writeUsers(a.opts.Stdout, page.Items); err != nil {
						return err
					}
					if page.NextCursor != nil {
						fmt.Fprintf(a.opts.Stderr, "more: --cursor %s (or --all)\n", *page.NextCursor)
					}
					return nil
				}
				var rawPage Page[json.RawMessage]
				if err := decode(b, &rawPage); err != nil {
					return err
				}
				users, raw = append(users, page.Items...), append(raw, rawPage.Items...)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			if a.json {
				if raw == nil {
					raw = []json.RawMessage{}
				}
				b, err := json.Marshal(Page[json.RawMessage]{Items: raw})
				if err != nil {
					return err
				}
				a.emit(b)
				return nil
			}
			return writeUsers(a.opts.Stdout, users)
		},
	}
	f := c.Flags()
	f.StringVar(&search, "search", "", "only users whose username or email contains this (case-insensitive, literal)")
	f.IntVar(&limit, "limit", 50, "users per page, 1 to 100")
	f.StringVar(&cursor, "cursor", "", "the page after this cursor (the previous page's next_cursor)")
	f.BoolVar(&all, "all", false, "follow every page (with --json: one page of all items)")
	return c
}

func (a *app) usersShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show USER_ID",
		Short: "Show a user, its keys and usage (GET /admin/users/{id})",
		Args:  exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid, err := idArg("USER_ID", args[0])
			if err != nil {
				return err
			}
			api, err := a.client()
			if err != nil {
				return err
			}
			var d UserDetail
			b, err := api.get(cmd.Context(), fmt.Sprintf("/admin/users/%d", uid), nil, &d)
			if err != nil {
				return err
			}
			if a.json {
				a.emit(b)
				return nil
			}
			return writeUserDetail(a.opts.Stdout, d, time.Now())
		},
	}
}

// userChange runs one change of a user (method path body) and prints the
// user it answers with.
func (a *app) userChange(cmd *cobra.Command, method, path string, body any) error {
	api, err := a.client()
	if err != nil {
		return err
	}
	var u User
	b, err := api.send(cmd.Context(), method, path, body, &u)
	if err != nil {
		return err
	}
	if a.json {
		a.emit(b)
		return nil
	}
	return writeUser(a.opts.Stdout, u)
}

func (a *app) usersSuspend() *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:     "suspend USER_ID --reason TEXT",
		Short:   "Suspend a user: every key is refused 403 (POST /admin/users/{id}/suspend)",
		Example: `  ratebill users suspend 42 --reason "chargeback 2026-11"`,
		Args:    exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid, err := idArg("USER_ID", args[0])
			if err != nil {
				return err
			}
			if reason == "" {
				return usagef("--reason is required (1 to 500 characters; it is kept in the audit log)")
			}
			return a.userChange(cmd, "POST", fmt.Sprintf("/admin/users/%d/suspend", uid), map[string]string{"reason": reason})
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (required; 1 to 500 characters, audited); again replaces the reason")
	return c
}

func (a *app) usersReactivate() *cobra.Command {
	return &cobra.Command{
		Use:   "reactivate USER_ID",
		Short: "Lift a user's suspension (POST /admin/users/{id}/reactivate)",
		Args:  exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid, err := idArg("USER_ID", args[0])
			if err != nil {
				return err
			}
			return a.userChange(cmd, "POST", fmt.Sprintf("/admin/users/%d/reactivate", uid), nil)
		},
	}
}

func (a *app) usersLimit() *cobra.Command {
	var (
		units, window int64
		clear         bool
	)
	c := &cobra.Command{
		Use:   "limit USER_ID (--limit UNITS --window SECONDS | --clear)",
		Short: "Set or clear a user's limit override (PUT/DELETE /admin/users/{id}/limit)",
		Example: `  ratebill users limit 42 --limit 1000 --window 60
  ratebill users limit 42 --clear`,
		Args: exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid, err := idArg("USER_ID", args[0])
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/admin/users/%d/limit", uid)
			f := cmd.Flags()
			setting := f.Changed("limit") || f.Changed("window")
			switch {
			case clear && setting:
				return usagef("--clear goes alone: not with --limit or --window")
			case clear:
				return a.userChange(cmd, "DELETE", path, nil)
			case !f.Changed("limit") || !f.Changed("window"):
				return usagef("give --limit UNITS and --window SECONDS together, or --clear")
			}
			return a.userChange(cmd, "PUT", path, Limit{Limit: units, Window: window})
		},
	}
	f := c.Flags()
	f.Int64Var(&units, "limit", 0, "units per window")
	f.Int64Var(&window, "window", 0, "the window's length in seconds")
	f.BoolVar(&clear, "clear", false, "remove the override: back to the default limit")
	return c
}
