package users

// The operator API (/admin/…): read and change users, their keys and
// limits, operator tokens, and page through the audit log. The routing
// table marks these rows routes.AuthOperator, so every handler below runs
// behind operator.Authenticator.Require (a valid token; admin scope for
// writes). Every change is audited in the transaction that makes it
// (package postgres); a change that must reach cached principals returns
// the user's new version, published to Redis after commit.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/operator"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/ratelimit"
)

// adminStore is the storage the operator API uses; *postgres.Store.
type adminStore interface {
	ListUsers(ctx context.Context, q string, afterID int64, limit int) ([]postgres.AdminUser, error)
	AdminGetUser(ctx context.Context, id int64) (postgres.AdminUser, []shared.Key, shared.Period, error)
	SuspendUser(ctx context.Context, actor postgres.Actor, id int64, reason string) (postgres.AdminUser, error)
	ReactivateUser(ctx context.Context, actor postgres.Actor, id int64) (postgres.AdminUser, error)
	SetUserLimit(ctx context.Context, actor postgres.Actor, id, units, windowSeconds int64) (postgres.AdminUser, error)
	ClearUserLimit(ctx context.Context, actor postgres.Actor, id int64) (postgres.AdminUser, error)
	SetSpendCap(ctx context.Context, actor postgres.Actor, id int64, amount *decimal.Decimal) (int64, error)
	IssueKey(ctx context.Context, userID int64, name string, expiresIn time.Duration, actor postgres.AuditEntry) (shared.NewKey, error)
	RevokeKeyByID(ctx context.Context, userID, keyID int64, actor postgres.AuditEntry) (shared.KeyChange, error)
	ListOperatorTokens(ctx context.Context) ([]postgres.OperatorToken, error)
	CreateOperatorToken(ctx context.Context, actor postgres.Actor, name, scope string, digest [32]byte, prefix string) (postgres.OperatorToken, error)
	RevokeOperatorToken(ctx context.Context, actor postgres.Actor, id int64) error
	ListAudit(ctx context.Context, f postgres.AuditFilter, beforeID int64, limit int) ([]postgres.AuditRecord, error)
	UserPlan(ctx context.Context, id int64) (string, *time.Time, error)
}

// VersionPublisher publishes a user's new users.version to Redis after a
// change commits, so every instance that cached one of the user's keys
// revalidates it on its next request (the limiter's PublishVersion).
type VersionPublisher interface {
	PublishVersion(ctx context.Context, userID, version int64) error
}

var _ VersionPublisher = (*ratelimit.Limiter)(nil)

type admin struct {
	store     adminStore
	publisher VersionPublisher // nil: none; AUTH_CACHE_TTL bounds propagation
	maxBody   int64
	clientIP  httpapi.ClientAddr
}

// Page sizes and field bounds of the operator API.
const (
	defaultPageSize = 50
	maxPageSize     = 100
	maxReason       = 500
	maxName         = 64
	maxQuery        = 254
	minExpiresIn    = 60
	maxExpiresIn    = 31536000
	maxLimitUnits   = 1 << 50
	maxLimitWindow  = 366 * 86400
)

// auditActions are the actions the audit log records (GET /admin/audit?action=).
var auditActions = []string{"key.create", "key.rotate", "key.revoke", "user.suspend", "user.reactivate",
	"user.limit.set", "user.limit.clear", "user.cap.set", "user.cap.clear", "user.plan.set", "plan.create", "plan.update",
	"token.create", "token.revoke"}

// adminUser is the operator API's user object.
type adminUser struct {
	ID              int64       `json:"id"`
	Username        string      `json:"username"`
	Email           string      `json:"email"`
	CreatedAt       time.Time   `json:"created_at"`
	SuspendedAt     *time.Time  `json:"suspended_at"`
	SuspendedReason *string     `json:"suspended_reason"`
	Limit           *limitValue `json:"limit"`
	// SpendCap is the user's spend cap, two decimal places; null: none.
	SpendCap *string `json:"spend_cap"`
}

type limitValue struct {
	Limit  int64 `json:"limit"`
	Window int64 `json:"window"`
}

type usageSummary struct {
	TotalRequests int64 `json:"total_requests"`
	TotalUnits    int64 `json:"total_units"`
}

type adminUserDetail struct {
	adminUser
	Keys  []keyObject  `json:"keys"`
	Usage usageSummary `json:"usage"`
	// Plan is the plan the user is on now (effective_from null: never
	// assigned, on the default plan); a limit override still wins.
	Plan userPlan `json:"plan"`
}

// keyObject is the key object of the keys API (DESIGN: key objects).
type keyObject struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	APIKeyPrefix string     `json:"api_key_prefix"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

type createdKey struct {
	keyObject
	APIKey string `json:"api_key"`
}

type tokenObject struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	TokenPrefix string     `json:"token_prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

type createdToken struct {
	tokenObject
	Token string `json:"token"`
}

type auditActor struct {
	Type string `json:"type"`
	ID   *int64 `json:"id"`
	Name string `json:"name"`
}

type auditItem struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      auditActor      `json:"actor"`
	Action     string          `json:"action"`
	UserID     *int64          `json:"user_id"`
	Target     string          `json:"target"`
	RemoteAddr string          `json:"remote_addr"`
	RequestID  string          `json:"request_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
}

type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func toAdminUser(u postgres.AdminUser) adminUser {
	out := adminUser{ID: u.ID, Username: u.Username, Email: u.Email, CreatedAt: u.CreatedAt,
		SuspendedAt: u.SuspendedAt, SuspendedReason: u.SuspendedReason}
	if u.LimitUnits != nil && u.LimitWindowSeconds != nil {
		out.Limit = &limitValue{Limit: *u.LimitUnits, Window: *u.LimitWindowSeconds}
	}
	if u.SpendCap != nil {
		s := u.SpendCap.StringFixed(2)
		out.SpendCap = &s
	}
	return out
}

func toKey(k shared.Key) keyObject {
	return keyObject{ID: k.ID, Name: k.Name, APIKeyPrefix: k.Prefix, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

func toToken(t postgres.OperatorToken) tokenObject {
	return tokenObject{ID: t.ID, Name: t.Name, Scope: t.Scope, TokenPrefix: t.TokenPrefix, CreatedAt: t.CreatedAt,
		RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt}
}

// Not-found answers: the same body whether the id is malformed, absent,
// or (for keys and tokens) already revoked, so nothing hints that an id
// exists.
var (
	errNoUser  = shared.Errorf(shared.ENotFound, "no such user")
	errNoKey   = shared.Errorf(shared.ENotFound, "no such active key")
	errNoToken = shared.Errorf(shared.ENotFound, "no such active operator token")
)

// pathID parses the {id} of the request's path: a positive decimal int64.
func pathID(r *http.Request) (int64, bool) {
	s := r.PathValue("id")
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// notFound maps a store's ENotFound onto the resource's own answer.
func notFound(err, as error) error {
	if shared.ErrorCode(err) == shared.ENotFound {
		return as
	}
	return err
}

func (a *admin) actor(r *http.Request) postgres.Actor {
	op, _ := operator.From(r.Context())
	return postgres.Actor{Type: postgres.ActorOperator, ID: op.TokenID, Name: op.Name,
		RemoteAddr: httpapi.ClientIP(r, a.clientIP), RequestID: httpapi.RequestID(r.Context())}
}

// publish sends a committed change's version to Redis. A failure is
// logged, not answered: the change is committed, and AUTH_CACHE_TTL
// bounds how long a cached principal can miss it.
func (a *admin) publish(r *http.Request, userID, version int64) {
	if a.publisher == nil {
		return
	}
	if err := a.publisher.PublishVersion(r.Context(), userID, version); err != nil {
		httpapi.Logger(r.Context()).WarnContext(r.Context(), "publishing user version", "user_id", userID, "error", err.Error())
	}
}

func invalid(field, detail string) error {
	return &shared.Error{Code: shared.EInvalid, Message: field + " " + detail,
		Fields: []shared.FieldError{{Field: field, Detail: detail}}}
}

// pageParams reads limit (1..100, default 50) and cursor (base64url of a
// positive id) from the query.
func pageParams(q url.Values) (limit int, after int64, err error) {
	limit = defaultPageSize
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > maxPageSize {
			return 0, 0, invalid("limit", "must be a whole number from 1 to 100")
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" || q.Has("cursor") {
		b, derr := base64.RawURLEncoding.DecodeString(c)
		id, perr := strconv.ParseInt(string(b), 10, 64)
		if derr != nil || perr != nil || id <= 0 || len(b) > 19 || b[0] == '0' {
			return 0, 0, shared.Errorf(shared.EInvalidCursor, "cursor was not issued by this API; start again without it")
		}
		after = id
	}
	return limit, after, nil
}

func cursorFor(id int64) *string {
	c := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
	return &c
}

func (a *admin) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after, err := pageParams(q)
	if err == nil && utf8.RuneCountInString(q.Get("q")) > maxQuery {
		err = invalid("q", "must be at most 254 characters")
	}
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	// One more than the page: a next page exists only if it comes back.
	users, err := a.store.ListUsers(r.Context(), q.Get("q"), after, limit+1)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	out := page[adminUser]{Items: []adminUser{}}
	for i, u := range users {
		if i == limit {
			out.NextCursor = cursorFor(users[i-1].ID)
			break
		}
		out.Items = append(out.Items, toAdminUser(u))
	}
	httpapi.JSON(w, http.StatusOK, out)
}

func (a *admin) getUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	u, keys, tot, err := a.store.AdminGetUser(r.Context(), id)
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoUser))
		return
	}
	plan, from, err := a.store.UserPlan(r.Context(), id)
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoUser))
		return
	}
	out := adminUserDetail{adminUser: toAdminUser(u), Keys: []keyObject{}, Usage: usageSummary{TotalRequests: tot.Requests, TotalUnits: tot.Units},
		Plan: userPlan{UserID: id, Plan: plan, EffectiveFrom: from}}
	for _, k := range keys {
		out.Keys = append(out.Keys, toKey(k))
	}
	httpapi.JSON(w, http.StatusOK, out)
}

type suspendRequest struct {
	Reason *string `json:"reason"`
}

func (a *admin) suspend(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	var req suspendRequest
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if req.Reason == nil || *req.Reason == "" || utf8.RuneCountInString(*req.Reason) > maxReason || !utf8.ValidString(*req.Reason) {
		httpapi.Error(w, r, invalid("reason", "is required: 1 to 500 characters"))
		return
	}
	u, err := a.store.SuspendUser(r.Context(), a.actor(r), id, *req.Reason)
	a.answerUser(w, r, u, err)
}

func (a *admin) reactivate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	u, err := a.store.ReactivateUser(r.Context(), a.actor(r), id)
	a.answerUser(w, r, u, err)
}

type limitRequest struct {
	Limit  *int64 `json:"limit"`
	Window *int64 `json:"window"`
}

func (a *admin) setLimit(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	var req limitRequest
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	var fields []shared.FieldError
	if req.Limit == nil || *req.Limit < 1 || *req.Limit > maxLimitUnits {
		fields = append(fields, shared.FieldError{Field: "limit", Detail: "is required: units per window, from 1 to 2^50"})
	}
	if req.Window == nil || *req.Window < 1 || *req.Window > maxLimitWindow {
		fields = append(fields, shared.FieldError{Field: "window", Detail: "is required: seconds, from 1 to 31622400"})
	}
	if len(fields) > 0 {
		httpapi.Error(w, r, &shared.Error{Code: shared.EInvalid, Message: "invalid limit: see errors", Fields: fields})
		return
	}
	u, err := a.store.SetUserLimit(r.Context(), a.actor(r), id, *req.Limit, *req.Window)
	a.answerUser(w, r, u, err)
}

func (a *admin) clearLimit(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	u, err := a.store.ClearUserLimit(r.Context(), a.actor(r), id)
	a.answerUser(w, r, u, err)
}

// capAnswer is the body of PUT /admin/users/{id}/cap.
type capAnswer struct {
	UserID int64  `json:"user_id"`
	Amount string `json:"amount"`
}

// setCap sets a user's spend cap for them (the customer's own PUT
// /billing/cap), audited and published like every user change.
func (a *admin) setCap(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	var req struct {
		Amount *string `json:"amount"`
	}
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if req.Amount == nil {
		httpapi.Error(w, r, invalid("amount", `is required: a decimal string, e.g. "50.00"`))
		return
	}
	amount, err := pricing.ParseCap(*req.Amount)
	if err != nil {
		httpapi.Error(w, r, invalid("amount", err.Error()))
		return
	}
	v, err := a.store.SetSpendCap(r.Context(), a.actor(r), id, &amount)
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoUser))
		return
	}
	a.publish(r, id, v)
	httpapi.JSON(w, http.StatusOK, capAnswer{UserID: id, Amount: amount.StringFixed(2)})
}

// clearCap removes a user's spend cap: 204.
func (a *admin) clearCap(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	v, err := a.store.SetSpendCap(r.Context(), a.actor(r), id, nil)
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoUser))
		return
	}
	a.publish(r, id, v)
	w.WriteHeader(http.StatusNoContent)
}

// answerUser answers a user change: published, then 200 with the user.
func (a *admin) answerUser(w http.ResponseWriter, r *http.Request, u postgres.AdminUser, err error) {
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoUser))
		return
	}
	a.publish(r, u.ID, u.Version)
	httpapi.JSON(w, http.StatusOK, toAdminUser(u))
}

type issueRequest struct {
	Name      *string `json:"name"`
	ExpiresIn *int64  `json:"expires_in"`
}

func (a *admin) issueKey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	var req issueRequest
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	name := ""
	var fields []shared.FieldError
	if req.Name != nil {
		name = *req.Name
		if utf8.RuneCountInString(name) > maxName {
			fields = append(fields, shared.FieldError{Field: "name", Detail: "must be at most 64 characters"})
		}
	}
	var expires time.Duration // 0: never
	if req.ExpiresIn != nil {
		if *req.ExpiresIn < minExpiresIn || *req.ExpiresIn > maxExpiresIn {
			fields = append(fields, shared.FieldError{Field: "expires_in", Detail: "must be seconds from 60 to 31536000"})
		} else {
			expires = time.Duration(*req.ExpiresIn) * time.Second
		}
	}
	if len(fields) > 0 {
		httpapi.Error(w, r, &shared.Error{Code: shared.EInvalid, Message: "invalid key: see errors", Fields: fields})
		return
	}
	// The customer's POST /keys path and audit row (key.create), with the
	// operator as actor (the key cap binds customers only).
	k, err := a.store.IssueKey(r.Context(), id, name, expires, a.actor(r).Who())
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoUser))
		return
	}
	httpapi.JSON(w, http.StatusCreated, createdKey{keyObject: toKey(k.Key), APIKey: k.APIKey})
}

func (a *admin) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoKey)
		return
	}
	kc, err := a.store.RevokeKeyByID(r.Context(), 0, id, a.actor(r).Who())
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoKey))
		return
	}
	a.publish(r, kc.Key.UserID, kc.Version)
	w.WriteHeader(http.StatusNoContent)
}

func (a *admin) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.store.ListOperatorTokens(r.Context())
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	out := page[tokenObject]{Items: []tokenObject{}}
	for _, t := range ts {
		out.Items = append(out.Items, toToken(t))
	}
	httpapi.JSON(w, http.StatusOK, out)
}

type tokenRequest struct {
	Name  *string `json:"name"`
	Scope *string `json:"scope"`
}

func (a *admin) createToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	var fields []shared.FieldError
	if req.Name == nil || *req.Name == "" || utf8.RuneCountInString(*req.Name) > maxName {
		fields = append(fields, shared.FieldError{Field: "name", Detail: "is required: 1 to 64 characters"})
	}
	if req.Scope == nil || (*req.Scope != postgres.ScopeAdmin && *req.Scope != postgres.ScopeViewer) {
		fields = append(fields, shared.FieldError{Field: "scope", Detail: `must be "admin" or "viewer"`})
	}
	if len(fields) > 0 {
		httpapi.Error(w, r, &shared.Error{Code: shared.EInvalid, Message: "invalid token: see errors", Fields: fields})
		return
	}
	tok, err := operator.Token.Generate(nil)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	t, err := a.store.CreateOperatorToken(r.Context(), a.actor(r), *req.Name, *req.Scope, apikey.Hash(tok), operator.Token.Display(tok))
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusCreated, createdToken{tokenObject: toToken(t), Token: tok})
}

func (a *admin) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoToken)
		return
	}
	if err := a.store.RevokeOperatorToken(r.Context(), a.actor(r), id); err != nil {
		httpapi.Error(w, r, notFound(err, errNoToken))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *admin) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, before, err := pageParams(q)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	var f postgres.AuditFilter
	if v := q.Get("user"); v != "" || q.Has("user") {
		id, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || id < 1 {
			httpapi.Error(w, r, invalid("user", "must be a user id (a positive whole number)"))
			return
		}
		f.UserID = id
	}
	if v := q.Get("action"); v != "" || q.Has("action") {
		if !slices.Contains(auditActions, v) {
			httpapi.Error(w, r, invalid("action", "must be one of the audited actions (see the API documentation)"))
			return
		}
		f.Action = v
	}
	rows, err := a.store.ListAudit(r.Context(), f, before, limit+1)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	out := page[auditItem]{Items: []auditItem{}}
	for i, e := range rows {
		if i == limit {
			out.NextCursor = cursorFor(rows[i-1].ID)
			break
		}
		out.Items = append(out.Items, auditItem{ID: e.ID, At: e.At, Actor: auditActor{Type: e.ActorType, ID: e.ActorID, Name: e.ActorName},
			Action: e.Action, UserID: e.UserID, Target: e.Target, RemoteAddr: e.RemoteAddr, RequestID: e.RequestID,
			Before: rawOrNull(e.Before), After: rawOrNull(e.After)})
	}
	httpapi.JSON(w, http.StatusOK, out)
}

func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
