package cli

import (
	"encoding/json"
	"time"
)

// The API's objects, as functions/users/admin.go writes them (the
// OpenAPI document in shared/openapi describes the same shapes).

// User is the operator API's user object.
type User struct {
	ID              int64      `json:"id"`
	Username        string     `json:"username"`
	Email           string     `json:"email"`
	CreatedAt       time.Time  `json:"created_at"`
	SuspendedAt     *time.Time `json:"suspended_at"`
	SuspendedReason *string    `json:"suspended_reason"`
	Limit           *Limit     `json:"limit"`
}

// Limit is a per-user limit override: Limit units per Window seconds.
type Limit struct {
	Limit  int64 `json:"limit"`
	Window int64 `json:"window"`
}

// UserDetail is GET /admin/users/{id}: the user, every key (newest
// first) and the totals of its usage.
type UserDetail struct {
	User
	Keys  []Key     `json:"keys"`
	Plan  *UserPlan `json:"plan"`
	Usage struct {
		TotalRequests int64 `json:"total_requests"`
		TotalUnits    int64 `json:"total_units"`
	} `json:"usage"`
}

// Key is an API key without its secret.
type Key struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	APIKeyPrefix string     `json:"api_key_prefix"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

// CreatedKey is POST /admin/users/{id}/keys: the key and, once, its
// secret.
type CreatedKey struct {
	Key
	APIKey string `json:"api_key"`
}

// Token is an operator token without its secret.
type Token struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	TokenPrefix string     `json:"token_prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

// CreatedToken is POST /admin/tokens: the token and, once, its secret.
type CreatedToken struct {
	Token
	Secret string `json:"token"`
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID    int64     `json:"id"`
	At    time.Time `json:"at"`
	Actor struct {
		Type string `json:"type"`
		ID   *int64 `json:"id"`
		Name string `json:"name"`
	} `json:"actor"`
	Action     string          `json:"action"`
	UserID     *int64          `json:"user_id"`
	Target     string          `json:"target"`
	RemoteAddr string          `json:"remote_addr"`
	RequestID  string          `json:"request_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
}

// Page is one page of a list: pass NextCursor back as cursor.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}
