package ratebill

import (
	"net/http"
	"time"
)

// The types in this file repeat the platform's wire contract for
// POST /verify and POST /verify/release. They are the API's contract: a
// field is added here only when the platform's OpenAPI document has it, and
// an existing field never changes its name or meaning.

// Code is the platform's verdict on one verified call. The platform may add
// codes in later versions; a Code this package does not name decodes
// unchanged, and Valid, not Code, decides whether a call is admitted.
type Code string

// The codes of a /verify answer.
const (
	// CodeValid: the key is good and the call was admitted and metered.
	CodeValid Code = "VALID"
	// CodeMalformedKey: the key does not have the shape of a platform key
	// (length, prefix, characters or checksum). Decided without a lookup.
	CodeMalformedKey Code = "MALFORMED_KEY"
	// CodeNotFound: no such key.
	CodeNotFound Code = "NOT_FOUND"
	// CodeRevoked: the key was revoked.
	CodeRevoked Code = "REVOKED"
	// CodeExpired: the key passed its expiry time.
	CodeExpired Code = "EXPIRED"
	// CodeSuspended: the key's user is suspended by an operator.
	CodeSuspended Code = "SUSPENDED"
	// CodeRateLimited: the call's cost does not fit the user's window;
	// RateLimit.RetryAfter says when it may.
	CodeRateLimited Code = "RATE_LIMITED"
	// CodeSpendCapExceeded: admitting the call would exceed the user's
	// spend cap. Retrying does not help until the cap is raised.
	CodeSpendCapExceeded Code = "SPEND_CAP_EXCEEDED"
	// CodeDuplicate: the request id was replayed more often than the
	// platform allows (3 replays within 24 hours).
	CodeDuplicate Code = "DUPLICATE"
)

// HTTPStatus is the status a protected API answers its own client with
// for a call the platform decided with code c: 200 for CodeValid, 401 for
// a key that does not authenticate, 403 suspended, 429 rate limited, 402
// spend cap, 409 duplicate. A code this package does not know is a 403:
// an unknown denial stays a denial.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeValid:
		return http.StatusOK
	case CodeMalformedKey, CodeNotFound, CodeRevoked, CodeExpired:
		return http.StatusUnauthorized
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeSpendCapExceeded:
		return http.StatusPaymentRequired
	case CodeDuplicate:
		return http.StatusConflict
	default:
		return http.StatusForbidden
	}
}

// VerifyOptions are the optional fields of a /verify call.
type VerifyOptions struct {
	// Cost is the call's price in units; 0 sends none and the platform
	// charges 1. Limits, usage and bills count units. Negative is an error.
	Cost int64
	// Endpoint labels the call in usage reports, such as
	// "GET /v1/forecast". Keep it to a bounded set of values: the platform
	// counts labels beyond its per-user bound as "other".
	Endpoint string
	// RequestID is the idempotency key of the call: 8 to 128 characters of
	// A-Z a-z 0-9 . _ : - (see ValidRequestID). A retry with the same id is
	// not charged again. Empty lets the platform create one.
	RequestID string
}

// verifyRequest is the body of POST /verify.
type verifyRequest struct {
	Key       string `json:"key"`
	Cost      int64  `json:"cost,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// VerifyResult is the platform's 200 answer to POST /verify. Every
// well-formed call gets one, admitted or not: check Valid.
type VerifyResult struct {
	// Valid reports whether the call was admitted (and metered). It is
	// the verdict; Code explains it.
	Valid bool `json:"valid"`
	// Code is CodeValid for an admitted call and names the reason of a
	// denial otherwise.
	Code Code `json:"code"`
	// RequestID is the id the platform recorded the call under: the one
	// sent, or one it created.
	RequestID string `json:"request_id"`
	// User owns the key; nil when the key did not identify a user.
	User *User `json:"user"`
	// Cost is the number of units charged for this call: 0 for a denial
	// and for a replay.
	Cost int64 `json:"cost"`
	// RateLimit is the state of the user's window after this call; nil
	// when the key did not identify a user.
	RateLimit *RateLimit `json:"ratelimit"`
	// TotalUnits is the user's metered units in the current billing
	// period, this call included.
	TotalUnits int64 `json:"total_units"`
	// Replayed reports that the request id was seen before: this is the
	// first decision again, charged nothing.
	Replayed bool `json:"replayed"`
	// ReleaseToken lets the holder release an admitted call (see
	// Client.Release) within 15 minutes, so that it is not billed. Empty
	// when the call was not admitted.
	ReleaseToken string `json:"release_token,omitempty"`

	// Headers holds the rate-limit headers of the platform's answer
	// (RateLimit-Policy, RateLimit, X-RateLimit-Limit,
	// X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After) and its
	// X-Request-Id, ready to be copied onto a protected API's response.
	// Not part of the JSON body.
	Headers http.Header `json:"-"`
	// Unverified is set by Middleware with FailOpen when the platform could
	// not be reached and the call was served without a decision: nothing
	// else in the result is filled in, and the call is not metered. The
	// platform never sets it.
	Unverified bool `json:"-"`
}

// User identifies the owner of a key.
type User struct {
	// ID is the platform's user id.
	ID int64 `json:"id"`
	// Username is the user's unique name.
	Username string `json:"username"`
}

// RateLimit is the state of the user's rate-limit window closest to
// running out, in cost units.
type RateLimit struct {
	// Limit is the number of units the window admits.
	Limit int64 `json:"limit"`
	// Remaining is the number of units left in the window.
	Remaining int64 `json:"remaining"`
	// ResetsAt is when the window starts afresh (UTC).
	ResetsAt time.Time `json:"resets_at"`
	// RetryAfter is the number of seconds to wait before the denied call
	// fits; 0 when the call was admitted.
	RetryAfter int64 `json:"retry_after"`
}

// releaseRequest is the body of POST /verify/release.
type releaseRequest struct {
	ReleaseToken string `json:"release_token"`
}

// releaseResult is the 200 answer of POST /verify/release.
type releaseResult struct {
	Released  bool   `json:"released"`
	RequestID string `json:"request_id"`
	Cost      int64  `json:"cost"`
}

// FieldError names one invalid field of a request, in a problem answer.
type FieldError struct {
	// Field is the field's name in the request body.
	Field string `json:"field"`
	// Detail says what is wrong with it.
	Detail string `json:"detail"`
}

// rateLimitHeaders are the headers of a /verify answer that a protected
// API passes on to its client, in canonical form.
var rateLimitHeaders = []string{
	"Ratelimit-Policy",
	"Ratelimit",
	"X-Ratelimit-Limit",
	"X-Ratelimit-Remaining",
	"X-Ratelimit-Reset",
	"Retry-After",
}

// resultHeaders are the headers of a /verify answer kept in
// VerifyResult.Headers.
var resultHeaders = append(append([]string(nil), rateLimitHeaders...), "X-Request-Id")
