package users

import (
	"context"
	"net/http"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/postgres"
)

// Limits of the key endpoints.
const (
	// MaxKeyName is the longest key name, in characters.
	MaxKeyName = 64
	// MinExpiresIn and MaxExpiresIn bound POST /keys {"expires_in"}, in
	// seconds (a minute to a year).
	MinExpiresIn = 60
	MaxExpiresIn = 31_536_000
	// DefaultGrace and MaxGrace are a rotation's grace period, in seconds
	// (a day by default, at most a week; 0 revokes the old key at once).
	DefaultGrace = 86_400
	MaxGrace     = 604_800
)

// keyStore is the storage of the key endpoints; *postgres.Store.
type keyStore interface {
	ListKeys(ctx context.Context, userID int64) ([]shared.Key, error)
	IssueKey(ctx context.Context, userID int64, name string, expiresIn time.Duration, actor postgres.AuditEntry) (shared.NewKey, error)
	RotateKey(ctx context.Context, userID, keyID int64, grace time.Duration, actor postgres.AuditEntry) (shared.NewKey, shared.KeyChange, error)
	RevokeKeyByID(ctx context.Context, userID, keyID int64, actor postgres.AuditEntry) (shared.KeyChange, error)
}

// versionPublisher raises a user's version in Redis after a change
// committed; *ratelimit.Limiter.
type versionPublisher interface {
	PublishVersion(ctx context.Context, user int64, v int64) error
}

// keys serves the caller's own keys: GET /keys, POST /keys,
// POST /keys/{id}/rotate and DELETE /keys/{id} (X-API-Key, not metered).
type keys struct {
	store     keyStore
	publisher versionPublisher
	maxBody   int64
	clientIP  httpapi.ClientAddr
}

// Key is a key as its owner sees it: never the key itself.
type Key struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	APIKeyPrefix string     `json:"api_key_prefix"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
	// LastUsedAt is approximate: written in batches, at most
	// KEYS_LAST_USED_FLUSH (60 s) after the use.
	LastUsedAt *time.Time `json:"last_used_at"`
}

// NewKey is a key just created, with the key itself, shown this once.
type NewKey struct {
	Key
	APIKey string `json:"api_key"`
}

// KeyList is the answer of GET /keys: every key of the caller, newest
// first. There is one page (a user has few keys: KEYS_PER_USER_MAX
// active), so next_cursor is always null.
type KeyList struct {
	Items      []Key   `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// RotatedKey is the answer of POST /keys/{id}/rotate: the new key and
// the key it replaces, whose expires_at is now the end of the grace
// period (revoked_at now, for a grace of 0).
type RotatedKey struct {
	NewKey
	Replaced Key `json:"replaced"`
}

type createKeyRequest struct {
	Name      *string `json:"name"`
	ExpiresIn *int64  `json:"expires_in"`
}

type rotateKeyRequest struct {
	GraceSeconds *int64 `json:"grace_seconds"`
}

func publicKey(k shared.Key) Key {
	return Key{ID: k.ID, Name: k.Name, APIKeyPrefix: k.Prefix, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

// actor is the audit log's who and where for the caller.
func (k *keys) actor(r *http.Request, p shared.Principal) postgres.AuditEntry {
	return postgres.AuditEntry{ActorType: postgres.ActorUser, ActorID: p.UserID, ActorName: p.Username,
		RemoteAddr: httpapi.ClientIP(r, k.clientIP), RequestID: httpapi.RequestID(r.Context())}
}

func (k *keys) list(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	all, err := k.store.ListKeys(r.Context(), p.UserID)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	out := KeyList{Items: make([]Key, len(all))}
	for i, key := range all {
		out.Items[i] = publicKey(key)
	}
	httpapi.JSON(w, http.StatusOK, out)
}

func (k *keys) create(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	var req createKeyRequest
	if err := decodeOptional(w, r, k.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	name, expires, err := validateCreate(req)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	nk, err := k.store.IssueKey(r.Context(), p.UserID, name, expires, k.actor(r, p))
	if err != nil {
		httpapi.Error(w, r, err) // EConflict past the cap, or EUnavailable
		return
	}
	httpapi.JSON(w, http.StatusCreated, NewKey{Key: publicKey(nk.Key), APIKey: nk.APIKey})
}

func (k *keys) rotate(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	id, ok := keyID(r)
	if !ok {
		httpapi.Error(w, r, errNoSuchKey)
		return
	}
	var req rotateKeyRequest
	if err := decodeOptional(w, r, k.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	grace := int64(DefaultGrace)
	if req.GraceSeconds != nil {
		grace = *req.GraceSeconds
	}
	if grace < 0 || grace > MaxGrace {
		httpapi.Error(w, r, fieldError("grace_seconds", "must be whole seconds from 0 to "+strconv.Itoa(MaxGrace)+" (7 days)"))
		return
	}
	nk, old, err := k.store.RotateKey(r.Context(), p.UserID, id, time.Duration(grace)*time.Second, k.actor(r, p))
	if err != nil {
		httpapi.Error(w, r, notFoundAsOne(err))
		return
	}
	k.publish(r, p.UserID, old.Version)
	httpapi.JSON(w, http.StatusCreated, RotatedKey{NewKey: NewKey{Key: publicKey(nk.Key), APIKey: nk.APIKey}, Replaced: publicKey(old.Key)})
}

func (k *keys) revoke(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	id, ok := keyID(r)
	if !ok {
		httpapi.Error(w, r, errNoSuchKey)
		return
	}
	ch, err := k.store.RevokeKeyByID(r.Context(), p.UserID, id, k.actor(r, p))
	if err != nil {
		httpapi.Error(w, r, notFoundAsOne(err))
		return
	}
	k.publish(r, p.UserID, ch.Version)
	w.WriteHeader(http.StatusNoContent)
}

// publish tells every instance, through Redis, that the user changed:
// their next decision for the user sees the new version and looks the
// key up again. Should Redis not answer, the change still reaches them
// within AUTH_CACHE_TTL; the committed change stands either way.
func (k *keys) publish(r *http.Request, user, version int64) {
	if k.publisher == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if err := k.publisher.PublishVersion(ctx, user, version); err != nil {
		httpapi.Logger(r.Context()).WarnContext(r.Context(), "user version not published: cached keys follow within AUTH_CACHE_TTL", "user", user, "error", err.Error())
	}
}

// errNoSuchKey is the one answer for a key id that is not a number, does
// not exist, belongs to another user or is already revoked.
var errNoSuchKey = shared.Errorf(shared.ENotFound, "no such key")

func notFoundAsOne(err error) error {
	if shared.ErrorCode(err) == shared.ENotFound {
		return errNoSuchKey
	}
	return err
}

// keyID reads {id}: decimal digits only, a positive int64.
func keyID(r *http.Request) (int64, bool) {
	s := r.PathValue("id")
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// decodeOptional is httpapi.DecodeJSON for a body whose every field is
// optional: a request with no body and no Content-Type is an empty object.
func decodeOptional(w http.ResponseWriter, r *http.Request, maxBody int64, dst any) error {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return nil
	}
	return httpapi.DecodeJSON(w, r, maxBody, dst)
}

func fieldError(field, detail string) error {
	return &shared.Error{Code: shared.EInvalid, Message: "invalid field " + field, Fields: []shared.FieldError{{Field: field, Detail: detail}}}
}

// validateCreate checks POST /keys: a name of at most MaxKeyName
// printable characters (empty is allowed) and an expiry from
// MinExpiresIn to MaxExpiresIn seconds, or none.
func validateCreate(req createKeyRequest) (string, time.Duration, error) {
	var fields []shared.FieldError
	name := ""
	if req.Name != nil {
		name = *req.Name
		if !validKeyName(name) {
			fields = append(fields, shared.FieldError{Field: "name", Detail: "at most " + strconv.Itoa(MaxKeyName) + " printable characters, no control characters"})
		}
	}
	var expires time.Duration
	if req.ExpiresIn != nil {
		if n := *req.ExpiresIn; n < MinExpiresIn || n > MaxExpiresIn {
			fields = append(fields, shared.FieldError{Field: "expires_in", Detail: "must be whole seconds from " + strconv.Itoa(MinExpiresIn) + " to " + strconv.Itoa(MaxExpiresIn) + " (a year)"})
		} else {
			expires = time.Duration(n) * time.Second
		}
	}
	if len(fields) > 0 {
		msg := "invalid field " + fields[0].Field
		if len(fields) > 1 {
			msg = "invalid fields"
		}
		return "", 0, &shared.Error{Code: shared.EInvalid, Message: msg, Fields: fields}
	}
	return name, expires, nil
}

func validKeyName(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxKeyName {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}
