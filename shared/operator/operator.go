// Package operator authenticates the people who run the platform: operator
// tokens, sent as "Authorization: Bearer rbo_…".
//
// A token has the format of an API key (package apikey) under the prefix
// "rbo_": 256 random bits and a CRC-32 checksum, so a mistyped or
// truncated token is refused before any I/O. Only its SHA-256 is stored
// (operator_tokens.token_hash); a presented token is hashed and found by
// the digest's unique index, so no secret is compared in Go at all.
//
// Scopes: "admin" may read and change everything under /admin/; "viewer"
// may only read (GET). A missing, malformed, unknown or revoked token is
// a 401 with "WWW-Authenticate: Bearer"; a viewer token on a write is a
// 403 "forbidden".
//
// There is no per-instance cache: every operator request looks its token
// up (one indexed read), so a revoked token stops working on every
// instance at once. Operator traffic is small; the same statement writes
// last_used_at at most once a minute per token.
//
// Bootstrap: a token given in OPERATOR_BOOTSTRAP_TOKEN (on Google Cloud a
// Secret Manager secret Terraform creates) is made an admin token named
// "bootstrap" on the instance's first operator request (never at cold
// start: Cloud Run functions do no I/O then), idempotently.
package operator

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/postgres"
)

// Token is the operator token format: "rbo_" + 43 + 6 base62 characters.
var Token = apikey.Format{Prefix: "rbo_"}

// Operator is the authenticated caller of an operator route.
type Operator struct {
	TokenID int64
	Name    string
	Scope   string // postgres.ScopeAdmin or postgres.ScopeViewer
}

// store looks up tokens and ensures the bootstrap one; *postgres.Store.
type store interface {
	LookupOperatorToken(ctx context.Context, digest [32]byte) (postgres.OperatorToken, error)
	EnsureBootstrapToken(ctx context.Context, digest [32]byte, prefix string) (bool, error)
}

// Authenticator authenticates operator tokens against the store.
type Authenticator struct {
	store     store
	bootstrap string // OPERATOR_BOOTSTRAP_TOKEN; "" for none

	mu           sync.Mutex
	bootstrapped bool
}

// New returns an Authenticator on s. bootstrap, when not empty, must be a
// well-formed token (config checks it); it becomes an admin token on the
// first operator request.
func New(s store, bootstrap string) *Authenticator {
	return &Authenticator{store: s, bootstrap: bootstrap}
}

// Challenge is the WWW-Authenticate value of a 401 from an operator route.
const Challenge = `Bearer realm="ratebill-operator"`

type ctxKey struct{}

// From returns the operator a Require'd handler serves.
func From(ctx context.Context) (Operator, bool) {
	o, ok := ctx.Value(ctxKey{}).(Operator)
	return o, ok
}

// Require serves h only to a valid operator token; write routes need the
// admin scope.
func (a *Authenticator) Require(h http.Handler, write bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, err := a.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err == nil && write && op.Scope != postgres.ScopeAdmin {
			err = shared.Errorf(shared.EForbidden, "this token's scope (%s) may only read; changes need an admin token", op.Scope)
		}
		if err != nil {
			if shared.ErrorCode(err) == shared.EUnauthorized {
				w.Header().Set("WWW-Authenticate", Challenge)
			}
			httpapi.Error(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, op)))
	})
}

// Authenticate returns the operator whose token the Authorization header
// value carries. Errors: EUnauthorized (missing, not Bearer, malformed,
// unknown, revoked), EUnavailable.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Operator, error) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	tok = strings.TrimSpace(tok)
	switch {
	case authorization == "":
		return Operator{}, shared.Errorf(shared.EUnauthorized, "missing operator token: send Authorization: Bearer rbo_…")
	case !strings.EqualFold(scheme, "Bearer"):
		return Operator{}, shared.Errorf(shared.EUnauthorized, "send the operator token as Authorization: Bearer rbo_…")
	case Token.Validate(tok) != nil:
		return Operator{}, shared.Errorf(shared.EUnauthorized, "malformed operator token")
	}
	if err := a.ensureBootstrap(ctx); err != nil {
		return Operator{}, err
	}
	t, err := a.store.LookupOperatorToken(ctx, sha256.Sum256([]byte(tok)))
	switch {
	case shared.ErrorCode(err) == shared.ENotFound:
		return Operator{}, shared.Errorf(shared.EUnauthorized, "unknown operator token")
	case err != nil:
		return Operator{}, err
	case t.RevokedAt != nil:
		return Operator{}, shared.Errorf(shared.EUnauthorized, "revoked operator token")
	}
	return Operator{TokenID: t.ID, Name: t.Name, Scope: t.Scope}, nil
}

// ensureBootstrap inserts the bootstrap token once per instance; a
// failure is retried by the next request.
func (a *Authenticator) ensureBootstrap(ctx context.Context) error {
	if a.bootstrap == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bootstrapped {
		return nil
	}
	if _, err := a.store.EnsureBootstrapToken(ctx, sha256.Sum256([]byte(a.bootstrap)), Token.Display(a.bootstrap)); err != nil {
		return err
	}
	a.bootstrapped = true
	return nil
}
