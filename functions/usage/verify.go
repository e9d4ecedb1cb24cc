package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
)

// Limits of a POST /verify body.
const (
	// MaxCost is the largest cost of one call, in units.
	MaxCost = 10_000
	// MaxEndpointLength bounds the endpoint label, in characters.
	MaxEndpointLength = 128
	// defaultEndpoint labels calls that name no endpoint.
	defaultEndpoint = "/verify"
)

// Verification codes of a POST /verify answer; clients must accept codes
// they do not know as a denial.
const (
	CodeValid        = "VALID"
	CodeMalformedKey = "MALFORMED_KEY"
	CodeNotFound     = "NOT_FOUND"
	CodeRevoked      = "REVOKED"
	CodeExpired      = "EXPIRED"   // the key's expiry or rotation grace period has passed
	CodeSuspended    = "SUSPENDED" // the key's user is suspended
	CodeRateLimited  = "RATE_LIMITED"
	// CodeSpendCapExceeded: the call's cost would take the month over the
	// user's spend cap; nothing recorded or billed (do not retry).
	CodeSpendCapExceeded = "SPEND_CAP_EXCEEDED"
	// CodeDuplicate: the request id was answered MaxReplays times already
	// or first recorded more than ReplayWindow ago.
	CodeDuplicate = "DUPLICATE"
)

// ReplayedHeader is set to "true" on the answer to a retried request id.
const ReplayedHeader = gate.ReplayedHeader

// VerifyRequest is the body of POST /verify.
type VerifyRequest struct {
	// Key is the end client's API key; required.
	Key string `json:"key"`
	// Cost is the call's price in units, an integer from 1 to MaxCost;
	// absent means 1. Kept raw so that 2.0 and 2e0 are integers (as JSON
	// Schema says) and "2" or 2.5 are not.
	Cost json.RawMessage `json:"cost,omitempty"`
	// Endpoint labels the call in the ledger; at most MaxEndpointLength
	// printable characters.
	Endpoint string `json:"endpoint,omitempty"`
	// RequestID makes the call idempotent; absent means the X-Request-Id
	// header's (or the one the platform assigned).
	RequestID *string `json:"request_id,omitempty"`
}

// VerifyUser is the key's owner.
type VerifyUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// VerifyLimit is the caller's window after the decision.
type VerifyLimit struct {
	Limit     int64     `json:"limit"`     // units per window
	Remaining int64     `json:"remaining"` // units left in the window
	ResetsAt  time.Time `json:"resets_at"` // end of the window (UTC)
	// RetryAfter is 0 when admitted, else the whole seconds (rounded up)
	// until the cost can fit again.
	RetryAfter int64 `json:"retry_after"`
}

// VerifyResponse is the 200 answer of POST /verify, for every
// well-formed call, admitted or not.
type VerifyResponse struct {
	Valid     bool        `json:"valid"`
	Code      string      `json:"code"`
	RequestID string      `json:"request_id"`
	User      *VerifyUser `json:"user"` // null until the key is known
	// Cost is the units taken and billed: 0 when not admitted or when the
	// request id was already recorded.
	Cost int64 `json:"cost"`
	// RateLimit is null when the key is not known, or while the limit is
	// not enforced (RATE_LIMIT_FAIL_OPEN).
	RateLimit *VerifyLimit `json:"ratelimit"`
	// TotalUnits is the user's recorded units, this call's included; 0
	// when the call was not admitted (nothing is read for a denial).
	TotalUnits int64 `json:"total_units"`
	// Replayed reports a retried request id: the first decision again,
	// not billed again (at most gate.MaxReplays times).
	Replayed bool `json:"replayed"`
	// Released is true on a replay of a call that was released.
	Released bool `json:"released,omitempty"`
	// ReleaseToken releases this call (POST /verify/release) within 15
	// minutes: present only on the first answer of an admitted call.
	ReleaseToken string `json:"release_token,omitempty"`
	// Budget is what remains of the user's spend cap this month; absent
	// without a cap.
	Budget *Budget `json:"budget,omitempty"`
}

// verifier serves POST /verify: another API's server asks whether its
// caller's key may make a call of a given cost, and the call is metered
// exactly as GET /usage is (the same gate: key, limit, durable record).
type verifier struct {
	gate    *gate.Gate
	maxBody int64
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req VerifyRequest
	if err := httpapi.DecodeJSON(w, r, v.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	call, err := v.call(r, req)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	resp, err := decide(r.Context(), v.gate, w.Header(), req.Key, nil, call)
	if err != nil {
		httpapi.Error(w, r, err) // 503, or 409 for another cost under a recorded id
		return
	}
	buf := bufPool.Get().(*[]byte)
	*buf = append(resp.appendJSON((*buf)[:0]), '\n')
	httpapi.RawJSON(w, http.StatusOK, *buf)
	bufPool.Put(buf)
}

// decide is the verification both POST /verify and /auth answer: the key
// (a wrong shape decided without I/O), then the gate's Admit for call. A
// denial is a response with its code; an error is a dependency failure
// (EUnavailable), another cost under a recorded request id
// (ERequestIDConflict) or, with a client address, the failed-
// authentication limit (ERateLimited), never a denial. The rate-limit
// headers and Idempotent-Replayed go on h. clientAddr, the end client's
// address, puts the key behind the failed-authentication limit (/auth);
// nil, it is not limited (POST /verify: the caller is a customer's
// server, and the negative cache carries the load).
func decide(ctx context.Context, g *gate.Gate, h http.Header, key string, clientAddr func() string, call gate.Call) (VerifyResponse, error) {
	resp := VerifyResponse{RequestID: call.RequestID}
	if apikey.Validate(key) != nil {
		resp.Code = CodeMalformedKey
		return resp, nil
	}
	var p shared.Principal
	var err error
	if clientAddr != nil {
		p, err = g.AuthenticateFrom(ctx, h, key, clientAddr)
	} else {
		p, err = g.Authenticate(ctx, key)
	}
	if code, denied := keyDenial(err); denied {
		resp.Code = code
		if code == CodeSuspended {
			resp.User = &VerifyUser{ID: p.UserID, Username: p.Username}
		}
		return resp, nil
	} else if err != nil { // a dependency failed: never an answer of valid false
		return resp, err
	}
	resp.User = &VerifyUser{ID: p.UserID, Username: p.Username}

	m, err := g.Admit(ctx, p, call)
	if code, denied := keyDenial(err); denied {
		// The user changed since the key was cached (Admit revalidated it).
		resp.Code = code
		if code != CodeSuspended {
			resp.User = nil
		}
		return resp, nil
	}
	if m.Limited {
		gate.SetMeteringHeaders(h, m)
		resp.RateLimit = &VerifyLimit{
			Limit:     m.Limit.Limit.Requests,
			Remaining: m.Limit.Remaining,
			ResetsAt:  m.Limit.ResetAt(),
		}
		if !m.Limit.Allowed {
			resp.RateLimit.RetryAfter = max(int64(math.Ceil(m.Limit.RetryAfter.Seconds())), 1)
		}
	}
	resp.Budget = budget(m.Budget)
	switch {
	case shared.ErrorCode(err) == shared.ERequestIDReused:
		resp.Code = CodeDuplicate // a denial like any other
	case err != nil:
		return resp, err
	case m.CapExceeded:
		resp.Code = CodeSpendCapExceeded
	case !m.Admitted():
		resp.Code = CodeRateLimited
	default:
		resp.Valid, resp.Code = true, CodeValid
		resp.Cost = m.Cost
		resp.TotalUnits = m.Usage.TotalUnits
		resp.Replayed, resp.Released = m.Replayed, m.Replayed && m.Usage.Released
		resp.ReleaseToken = m.ReleaseToken
		if resp.Replayed {
			h[ReplayedHeader] = []string{"true"}
		}
	}
	return resp, nil
}

// keyDenial maps an authentication error to its verification code: a
// denial, not an error.
func keyDenial(err error) (string, bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, shared.ErrRevokedKey):
		return CodeRevoked, true
	case errors.Is(err, shared.ErrExpiredKey):
		return CodeExpired, true
	case shared.ErrorCode(err) == shared.EUnauthorized:
		return CodeNotFound, true
	case shared.ErrorCode(err) == shared.ESuspended:
		return CodeSuspended, true
	}
	return "", false
}

// call checks the body's fields and returns the call to admit. Invalid
// fields are one 422 naming each; a bad request id is a 400 of its own
// (never silently replaced), whether from the body or X-Request-Id.
func (v *verifier) call(r *http.Request, req VerifyRequest) (gate.Call, error) {
	var fields []shared.FieldError
	if req.Key == "" {
		fields = append(fields, shared.FieldError{Field: "key", Detail: "required: the API key to verify"})
	}
	cost, ok := parseCost(req.Cost)
	if !ok {
		fields = append(fields, shared.FieldError{Field: "cost", Detail: "must be an integer from 1 to " + strconv.Itoa(MaxCost)})
	}
	if !validEndpoint(req.Endpoint) {
		fields = append(fields, shared.FieldError{Field: "endpoint", Detail: "at most " + strconv.Itoa(MaxEndpointLength) + " printable characters, no control characters"})
	}
	if len(fields) > 0 {
		msg := "invalid field " + fields[0].Field
		if len(fields) > 1 {
			msg = "invalid fields"
		}
		return gate.Call{}, &shared.Error{Code: shared.EInvalid, Message: msg, Fields: fields}
	}
	c := gate.Call{Endpoint: req.Endpoint, Cost: cost, Releasable: true}
	if c.Endpoint == "" {
		c.Endpoint = defaultEndpoint
	}
	switch h := r.Header.Get(httpapi.RequestIDHeader); {
	case req.RequestID != nil:
		c.RequestID = *req.RequestID
	case h != "":
		c.RequestID = h
	default:
		c.RequestID = httpapi.RequestID(r.Context()) // assigned by the middleware
	}
	if !httpapi.ValidRequestID(c.RequestID) {
		return gate.Call{}, shared.Errorf(shared.EInvalidRequestID, "request_id must be 8 to 128 characters of A-Z a-z 0-9 . _ : -")
	}
	return c, nil
}

// parseCost reads the cost: absent is 1; otherwise a JSON number whose
// value is an integer from 1 to MaxCost (2.0 and 2e0 are 2). Strings,
// null, fractions and anything out of range are refused.
func parseCost(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 1, true
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || len(raw) > 64 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	// 256 bits hold every value of at most 64 characters up to MaxCost
	// closely enough that no fraction rounds to an integer; exponents are
	// parsed without expanding them.
	f, _, err := big.ParseFloat(string(raw), 10, 256, big.ToNearestEven)
	if err != nil || !f.IsInt() {
		return 0, false
	}
	n, acc := f.Int64()
	if acc != big.Exact || n < 1 || n > MaxCost {
		return 0, false
	}
	return n, true
}

// validEndpoint reports whether s is at most MaxEndpointLength printable
// characters (letters, marks, numbers, punctuation, symbols and the ASCII
// space: unicode.IsPrint), the rule the OpenAPI pattern states.
func validEndpoint(s string) bool {
	if utf8.RuneCountInString(s) > MaxEndpointLength {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// ReleaseRequest is the body of POST /verify/release.
type ReleaseRequest struct {
	// ReleaseToken is the token the admitting POST /verify answer carried.
	ReleaseToken string `json:"release_token"`
}

// ReleaseResponse is the 200 answer of POST /verify/release.
type ReleaseResponse struct {
	Released  bool   `json:"released"`
	RequestID string `json:"request_id"`
	// Cost is the units given back to the quota and taken off the bill.
	Cost int64 `json:"cost"`
}

// releaser serves POST /verify/release: the holder of a release token
// (the customer's server that verified the call) releases the call after
// its upstream failed, within 15 minutes and once: its quota comes back
// and it is not billed. An unknown token is 404, a second release or a
// late one 409.
type releaser struct {
	gate    *gate.Gate
	maxBody int64
}

func (rl *releaser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if err := httpapi.DecodeJSON(w, r, rl.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if req.ReleaseToken == "" {
		httpapi.Error(w, r, &shared.Error{Code: shared.EInvalid, Message: "invalid field release_token",
			Fields: []shared.FieldError{{Field: "release_token", Detail: "required: the token of the POST /verify answer"}}})
		return
	}
	rel, err := rl.gate.Release(r.Context(), req.ReleaseToken)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, ReleaseResponse{Released: true, RequestID: rel.RequestID, Cost: rel.Units})
}
