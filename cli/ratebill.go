package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes of Run.
const (
	ExitOK          = 0 // done
	ExitAPI         = 1 // the API refused (a non-2xx answer) or answered something unreadable
	ExitUsage       = 2 // bad arguments, flags or token source; nothing was sent
	ExitUnreachable = 3 // no answer from the API (connection, DNS, TLS, --timeout)
)

// DefaultURL is the API's address when neither --url nor RATEBILL_URL
// says otherwise: the local gateway of `make run`.
const DefaultURL = "http://127.0.0.1:8080"

// Options are what Run needs from its process; tests pass their own.
type Options struct {
	Stdout, Stderr io.Writer
	// Getenv reads RATEBILL_URL and RATEBILL_TOKEN; nil reads none.
	Getenv func(string) string
	// HTTPClient sends the requests; nil: a client of its own. --timeout
	// applies per request either way.
	HTTPClient *http.Client
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// app holds the global flags and the process's outputs; every command
// is a closure over it.
type app struct {
	opts      Options
	url       string
	token     string
	tokenFile string
	json      bool
	timeout   time.Duration
}

// Run runs the ratebill command line args (without the program's name)
// and returns its exit code. Errors are printed on Stderr, one line
// each.
func Run(ctx context.Context, args []string, o Options) int {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	root := NewCommand(o)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(o.Stderr, "ratebill: %s\n", err)
	var apiErr *APIError
	var respErr *responseError
	var unreachable *UnreachableError
	switch {
	case errors.As(err, &apiErr), errors.As(err, &respErr):
		return ExitAPI
	case errors.As(err, &unreachable):
		return ExitUnreachable
	default:
		// cobra's own errors (unknown command or flag, wrong number of
		// arguments) and ours: all about the command line.
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(o.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
}

// NewCommand is the root command, ready for Execute; Run is the usual
// way in.
func NewCommand(o Options) *cobra.Command {
	a := &app{opts: o}
	root := &cobra.Command{
		Use:   "ratebill",
		Short: "Operate the ratebill platform through its operator API",
		Long: `ratebill reads and changes the platform's users, keys, limits and operator
tokens, and pages through the audit log, through the operator API (/admin/…).

The API is --url (or RATEBILL_URL, default ` + DefaultURL + `); the operator token
comes from --token, --token-file or RATEBILL_TOKEN, in that order (make run
writes one to .data/operator-token). The token is never printed.

Output is a table for people; --json prints the API's JSON instead.
Exit codes: 0 done, 1 the API refused (status and detail on stderr),
2 usage error, 3 the API could not be reached.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	url := o.Getenv("RATEBILL_URL")
	if url == "" {
		url = DefaultURL
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", url, "the API's base URL (env RATEBILL_URL)")
	pf.StringVar(&a.token, "token", "", "operator token rbo_… (env RATEBILL_TOKEN; prefer --token-file, a flag shows in the process list)")
	pf.StringVar(&a.tokenFile, "token-file", "", "read the operator token from this file (e.g. .data/operator-token)")
	pf.BoolVar(&a.json, "json", false, "print the API's JSON instead of a table")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "give up on a request after this long (0: never)")
	root.AddCommand(a.usersCommand(), a.plansCommand(), a.keysCommand(), a.tokensCommand(), a.auditCommand())
	return root
}

// client is the API the global flags name, with the token resolved.
func (a *app) client() (*api, error) {
	u, err := url.Parse(a.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("--url %q is not an http(s) base URL such as %s", a.url, DefaultURL)
	}
	if a.timeout < 0 {
		return nil, usagef("--timeout must not be negative")
	}
	tok, err := a.resolveToken()
	if err != nil {
		return nil, err
	}
	hc := a.opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &api{base: strings.TrimRight(a.url, "/"), token: tok, http: hc, timeout: a.timeout}, nil
}

// resolveToken takes the token from --token, --token-file or
// RATEBILL_TOKEN. Error messages never include it.
func (a *app) resolveToken() (string, error) {
	var tok, from string
	switch {
	case a.token != "":
		tok, from = a.token, "--token"
	case a.tokenFile != "":
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return "", usagef("reading --token-file: %v", err)
		}
		tok, from = strings.TrimSpace(string(b)), "--token-file "+a.tokenFile
	default:
		tok, from = strings.TrimSpace(a.opts.Getenv("RATEBILL_TOKEN")), "RATEBILL_TOKEN"
	}
	if tok == "" {
		return "", usagef("no operator token: pass --token-file (e.g. .data/operator-token) or --token, or set RATEBILL_TOKEN")
	}
	for _, r := range tok {
		if r <= ' ' || r > '~' {
			return "", usagef("the operator token from %s has characters a token cannot have (whitespace or non-ASCII)", from)
		}
	}
	return tok, nil
}

// idArg parses a command's positional id: a positive decimal int64, as
// the API's paths take it.
func idArg(name, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "0") {
		return 0, usagef("%s must be a positive whole number, got %q", name, s)
	}
	return id, nil
}

// exactArgs is cobra.ExactArgs naming the arguments, as a usage error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// emit prints an API body as it came (--json), one trailing newline.
func (a *app) emit(b []byte) {
	w := a.opts.Stdout
	w.Write(b)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		io.WriteString(w, "\n")
	}
}

// group is a command that only holds subcommands: alone it prints its
// help; with an argument that names none of them it is a usage error
// (cobra would print the help and succeed).
func group(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}
