// Package users is the users function: sign-up (POST /users/), the
// caller's profile (GET /me), the caller's keys (/keys, keys.go) and the
// operator API (/admin/…, admin.go).
package users

import (
	"context"
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/identity"
	"github.com/ratebill/platform/shared/operator"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/serve"
	"github.com/ratebill/platform/shared/webui"
)

func init() {
	functions.HTTP("Users", serve.Lazy(Handler))
}

// Handler returns the users function's handler on d. Sign-up is limited
// per client IP and /me authenticated, as the routing table says.
func Handler(d *deps.Deps) (http.Handler, error) {
	s := &server{store: d.Store, maxBody: d.Config.MaxBodyBytes, gate: d.Gate}
	k := &keys{store: d.Store, publisher: d.Limiter, maxBody: d.Config.MaxBodyBytes,
		clientIP: httpapi.ClientAddr{Header: d.Config.ClientIPHeader, Hops: d.Config.TrustedProxyHops}}
	a := &admin{store: d.Store, publisher: d.Limiter, maxBody: d.Config.MaxBodyBytes,
		clientIP: httpapi.ClientAddr{Header: d.Config.ClientIPHeader, Hops: d.Config.TrustedProxyHops}}
	u := &adminUsage{store: d.Store, now: time.Now}
	pl := &adminPlans{admin: a, plans: d.Store, many: d.Limiter, now: time.Now,
		defaultOf: pricing.DefaultPlan(d.Config.RateLimit, d.Config.RateWindow, d.Config.UnitPrice, d.Config.Currency)}
	opts := serve.OptionsFor(d)
	opts.Operators = operator.New(d.Store, d.Config.OperatorBootstrapToken)
	signup := http.HandlerFunc(s.createUser)
	return serve.Router(routes.Users, d.Gate, serve.Handlers{
		"POST /users/": signup,
		"POST /users":  signup,
		"GET /me":      http.HandlerFunc(s.me),

		"GET /keys":              http.HandlerFunc(k.list),
		"POST /keys":             http.HandlerFunc(k.create),
		"POST /keys/{id}/rotate": http.HandlerFunc(k.rotate),
		"DELETE /keys/{id}":      http.HandlerFunc(k.revoke),

		"GET /admin/users":                  http.HandlerFunc(a.listUsers),
		"GET /admin/users/{id}":             http.HandlerFunc(a.getUser),
		"POST /admin/users/{id}/suspend":    http.HandlerFunc(a.suspend),
		"POST /admin/users/{id}/reactivate": http.HandlerFunc(a.reactivate),
		"PUT /admin/users/{id}/limit":       http.HandlerFunc(a.setLimit),
		"DELETE /admin/users/{id}/limit":    http.HandlerFunc(a.clearLimit),
		"PUT /admin/users/{id}/cap":         http.HandlerFunc(a.setCap),
		"DELETE /admin/users/{id}/cap":      http.HandlerFunc(a.clearCap),
		"POST /admin/users/{id}/keys":       http.HandlerFunc(a.issueKey),
		"DELETE /admin/keys/{id}":           http.HandlerFunc(a.revokeKey),
		"GET /admin/tokens":                 http.HandlerFunc(a.listTokens),
		"POST /admin/tokens":                http.HandlerFunc(a.createToken),
		"DELETE /admin/tokens/{id}":         http.HandlerFunc(a.revokeToken),
		"GET /admin/audit":                  http.HandlerFunc(a.listAudit),
		"GET /admin/plans":                  http.HandlerFunc(pl.list),
		"GET /admin/plans/{name}":           http.HandlerFunc(pl.get),
		"PUT /admin/plans/{name}":           http.HandlerFunc(pl.put),
		"PUT /admin/users/{id}/plan":        http.HandlerFunc(pl.assign),
		"GET /admin/usage/history":          http.HandlerFunc(u.history),
		"GET /admin/usage/top":              http.HandlerFunc(u.top),
		"GET /console":                      webui.Console(),
	}, opts)
}

// userStore is the storage the users function writes; *postgres.Store.
type userStore interface {
	CreateUser(ctx context.Context, username, email string, digest apikey.Digest, prefix string) (shared.User, error)
}

type server struct {
	store   userStore
	maxBody int64
	gate    *gate.Gate
}

type createRequest struct {
	Username *string `json:"username"`
	Email    *string `json:"email"`
}

// User is the public view of a user.
type User struct {
	ID           int64     `json:"id"`
	Username     string    `json:"username"`
	Email        string    `json:"email"`
	CreatedAt    time.Time `json:"created_at"`
	APIKeyPrefix string    `json:"api_key_prefix"`
}

type createResponse struct {
	User
	APIKey string `json:"api_key"`
}

// RateLimitPolicy describes the caller's quota.
type RateLimitPolicy struct {
	Limit         int64 `json:"limit"` // units per window (the user's override, if any)
	WindowSeconds int64 `json:"window_seconds"`
}

type meResponse struct {
	User
	RateLimit RateLimitPolicy `json:"rate_limit"`
}

// validate checks the sign-up fields and reports every problem at once.
// It returns the forms to store: package identity decides when two
// spellings are the same account (docs/identities.md).
func validate(req createRequest) (username, email string, err error) {
	var fields []shared.FieldError
	if req.Username == nil {
		fields = append(fields, shared.FieldError{Field: "username", Detail: "is required"})
	} else if username, err = identity.Username(*req.Username); err != nil {
		fields = append(fields, shared.FieldError{Field: "username", Detail: err.Error()})
	}
	if req.Email == nil {
		fields = append(fields, shared.FieldError{Field: "email", Detail: "is required"})
	} else if email, err = identity.Email(*req.Email); err != nil {
		fields = append(fields, shared.FieldError{Field: "email", Detail: err.Error()})
	}
	if len(fields) > 0 {
		return "", "", &shared.Error{Code: shared.EInvalid, Message: "invalid sign-up: see errors", Fields: fields}
	}
	return username, email, nil
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := httpapi.DecodeJSON(w, r, s.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	username, email, err := validate(req)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	key, err := apikey.Generate(nil)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	u, err := s.store.CreateUser(r.Context(), username, email, apikey.Hash(key), apikey.Display(key))
	if err != nil {
		httpapi.Error(w, r, err) // EConflict naming the field, or EUnavailable
		return
	}
	w.Header().Set("Location", "/me")
	httpapi.JSON(w, http.StatusCreated, createResponse{User: publicUser(u.ID, u.Username, u.Email, u.CreatedAt, u.KeyPrefix), APIKey: key})
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	lim := s.gate.LimitFor(p) // the user's override, if any
	httpapi.JSON(w, http.StatusOK, meResponse{
		User:      publicUser(p.UserID, p.Username, p.Email, p.CreatedAt, p.KeyPrefix),
		RateLimit: RateLimitPolicy{Limit: lim.Requests, WindowSeconds: int64(lim.Window / time.Second)},
	})
}

func publicUser(id int64, username, email string, created time.Time, prefix string) User {
	return User{ID: id, Username: username, Email: email, CreatedAt: created.UTC(), APIKeyPrefix: prefix}
}
