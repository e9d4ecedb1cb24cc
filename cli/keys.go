package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) keysCommand() *cobra.Command {
	c := group("keys", "Issue and revoke users' API keys")
	c.AddCommand(a.keysIssue(), a.keysRevoke())
	return c
}

func (a *app) keysIssue() *cobra.Command {
	var (
		name      string
		expiresIn time.Duration
	)
	c := &cobra.Command{
		Use:   "issue USER_ID [--name NAME] [--expires-in DURATION]",
		Short: "Issue an API key for a user; the key is printed once (POST /admin/users/{id}/keys)",
		Example: `  ratebill keys issue 42 --name migration --expires-in 720h
  ratebill keys issue 42 --json | jq -r .api_key`,
		Args: exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid, err := idArg("USER_ID", args[0])
			if err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("name") {
				body["name"] = name
			}
			if cmd.Flags().Changed("expires-in") {
				if expiresIn%time.Second != 0 || expiresIn <= 0 {
					return usagef("--expires-in must be a positive whole number of seconds (e.g. 3600s, 720h)")
				}
				body["expires_in"] = int64(expiresIn / time.Second)
			}
			api, err := a.client()
			if err != nil {
				return err
			}
			var k CreatedKey
			b, err := api.send(cmd.Context(), "POST", fmt.Sprintf("/admin/users/%d/keys", uid), body, &k)
			if err != nil {
				return err
			}
			if a.json {
				a.emit(b)
				return nil
			}
			expires := "never"
			if k.ExpiresAt != nil {
				expires = when(k.ExpiresAt)
			}
			w := a.opts.Stdout
			fmt.Fprintf(w, "key %d %q issued for user %d, expires %s\n", k.ID, k.Name, uid, expires)
			fmt.Fprintf(w, "api key (shown once, store it now): %s\n", k.APIKey)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "the key's name (up to 64 characters)")
	c.Flags().DurationVar(&expiresIn, "expires-in", 0, "the key expires after this long (60s to 8760h); default never")
	return c
}

func (a *app) keysRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke any user's key at once (DELETE /admin/keys/{id})",
		Long: `Revoke any user's key at once (DELETE /admin/keys/{id}). The key ids are in
'ratebill users show USER_ID'. The API answers 204 with no body, so --json
prints nothing; the exit code says it was done.`,
		Args: exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kid, err := idArg("KEY_ID", args[0])
			if err != nil {
				return err
			}
			return a.deleted(cmd, fmt.Sprintf("/admin/keys/%d", kid), fmt.Sprintf("key %d revoked", kid))
		},
	}
}

// deleted sends DELETE path (answered 204) and says what was done.
func (a *app) deleted(cmd *cobra.Command, path, done string) error {
	api, err := a.client()
	if err != nil {
		return err
	}
	if _, err := api.send(cmd.Context(), "DELETE", path, nil, nil); err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintln(a.opts.Stdout, done)
	}
	return nil
}

func (a *app) tokensCommand() *cobra.Command {
	c := group("tokens", "List, create and revoke operator tokens")
	c.AddCommand(a.tokensList(), a.tokensCreate(), a.tokensRevoke())
	return c
}

func (a *app) tokensList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Operator tokens, newest first, without secrets (GET /admin/tokens)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := a.client()
			if err != nil {
				return err
			}
			var page Page[Token]
			b, err := api.get(cmd.Context(), "/admin/tokens", nil, &page)
			if err != nil {
				return err
			}
			if a.json {
				a.emit(b)
				return nil
			}
			return writeTokens(a.opts.Stdout, page.Items)
		},
	}
}

func (a *app) tokensCreate() *cobra.Command {
	var name, scope string
	c := &cobra.Command{
		Use:     "create --name NAME --scope admin|viewer",
		Short:   "Create an operator token; it is printed once (POST /admin/tokens)",
		Example: `  ratebill tokens create --name grafana --scope viewer`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("--name is required")
			}
			if scope != "admin" && scope != "viewer" {
				return usagef(`--scope must be "admin" or "viewer"`)
			}
			api, err := a.client()
			if err != nil {
				return err
			}
			var t CreatedToken
			b, err := api.send(cmd.Context(), "POST", "/admin/tokens", map[string]string{"name": name, "scope": scope}, &t)
			if err != nil {
				return err
			}
			if a.json {
				a.emit(b)
				return nil
			}
			fmt.Fprintf(a.opts.Stdout, "token %d %q (%s) created\n", t.ID, t.Name, t.Scope)
			fmt.Fprintf(a.opts.Stdout, "operator token (shown once, store it now): %s\n", t.Secret)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "who or what uses it (required, up to 64 characters)")
	c.Flags().StringVar(&scope, "scope", "viewer", `"admin" (reads and changes) or "viewer" (reads only)`)
	return c
}

func (a *app) tokensRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke an operator token at once (DELETE /admin/tokens/{id}; not the last admin token)",
		Args:  exactArgs("TOKEN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tid, err := idArg("TOKEN_ID", args[0])
			if err != nil {
				return err
			}
			return a.deleted(cmd, fmt.Sprintf("/admin/tokens/%d", tid), fmt.Sprintf("token %d revoked", tid))
		},
	}
}
