package shared

import (
	"errors"
	"fmt"
)

// Code classifies an Error. Codes map onto HTTP statuses in exactly one
// place (package httpapi).
type Code string

// Application error codes.
const (
	EInvalid           Code = "validation-failed"      // 422: well-formed request, invalid fields
	EMalformed         Code = "malformed-request"      // 400: body is not valid JSON
	EInvalidRequestID  Code = "invalid-request-id"     // 400: a request id that breaks the rule (8-128 of A-Z a-z 0-9 . _ : -)
	EInvalidCursor     Code = "invalid-cursor"         // 400: a page cursor this API did not issue
	EUnauthorized      Code = "unauthorized"           // 401: missing, malformed or unknown key
	ESuspended         Code = "suspended"              // 403: the key's user is suspended
	EForbidden         Code = "forbidden"              // 403: a credential whose scope does not allow this (a viewer token writing)
	ENotFound          Code = "not-found"              // 404
	EMethod            Code = "method-not-allowed"     // 405
	EConflict          Code = "conflict"               // 409: duplicate username or email
	ERequestIDReused   Code = "request-id-reused"      // 409: a request id replayed past the bound (3 times, 24 h)
	ERequestIDConflict Code = "request-id-conflict"    // 409: a recorded request id sent with another cost
	ETooLarge          Code = "payload-too-large"      // 413
	EUnsupportedMedia  Code = "unsupported-media-type" // 415
	ERateLimited       Code = "rate-limited"           // 429
	ESpendCapExceeded  Code = "spend-cap-exceeded"     // 402: the call would take the month over the user's spend cap
	EUnavailable       Code = "service-unavailable"    // 503: a dependency is down, or the instance is draining
	EInternal          Code = "internal-error"         // 500: a bug; details are logged, not sent
)

// Codes lists every code, in status order, for generators (the nginx
// problem bodies) and tests.
var Codes = []Code{EMalformed, EInvalidRequestID, EInvalidCursor, EUnauthorized, ESpendCapExceeded, ESuspended, EForbidden, ENotFound, EMethod, EConflict, ERequestIDReused, ERequestIDConflict, ETooLarge,
	EUnsupportedMedia, EInvalid, ERateLimited, EInternal, EUnavailable}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error is the application error: a code, a message safe to show the
// client, and optionally the underlying cause (logged, never shown).
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with a formatted client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a dependency failure: the client sees only which
// dependency, the log sees the cause.
func Unavailable(dependency string, cause error) *Error {
	return &Error{Code: EUnavailable, Message: dependency + " is unavailable; retry later", Err: cause}
}

// ErrShuttingDown is the error of every dependency after its instance
// began to drain (SIGTERM): the client should simply retry, and Cloud Run
// routes the retry to another instance. It is one value, so errors.Is
// recognises it through any wrapping.
var ErrShuttingDown = &Error{Code: EUnavailable, Message: "this instance is shutting down; retry"}

// The answers for a well-formed key that authenticates nobody. All are
// EUnauthorized (401); POST /verify tells them apart (NOT_FOUND, REVOKED,
// EXPIRED).
var (
	ErrUnknownKey = &Error{Code: EUnauthorized, Message: "unknown API key"}
	ErrRevokedKey = &Error{Code: EUnauthorized, Message: "revoked API key"}
	ErrExpiredKey = &Error{Code: EUnauthorized, Message: "expired API key: its expiry or rotation grace period has passed"}
)

// ErrSuspended answers every key of a suspended user (403; POST /verify:
// SUSPENDED). The operator's reason is not shown.
var ErrSuspended = &Error{Code: ESuspended, Message: "this account is suspended; contact the platform's operator"}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
