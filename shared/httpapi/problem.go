// Package httpapi holds what every function's HTTP layer shares: RFC 9457
// problem responses (the one place errors become statuses), JSON request
// decoding with size and media-type checks, request ids, Cloud Logging
// request logs, client IPs and rate-limit headers.
package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/ratebill/platform/shared"
)

// ProblemType returns the problem type URI for an error code.
func ProblemType(c shared.Code) string { return "urn:problem-type:ratebill:" + string(c) }

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []shared.FieldError `json:"errors,omitempty"`
}

var statuses = map[shared.Code]int{
	shared.EMalformed:         http.StatusBadRequest,
	shared.EInvalidRequestID:  http.StatusBadRequest,
	shared.ERequestIDReused:   http.StatusConflict,
	shared.ERequestIDConflict: http.StatusConflict,
	shared.EInvalidCursor:     http.StatusBadRequest,
	shared.EUnauthorized:      http.StatusUnauthorized,
	shared.ESuspended:         http.StatusForbidden,
	shared.EForbidden:         http.StatusForbidden,
	shared.ENotFound:          http.StatusNotFound,
	shared.EMethod:            http.StatusMethodNotAllowed,
	shared.EConflict:          http.StatusConflict,
	shared.ETooLarge:          http.StatusRequestEntityTooLarge,
	shared.EUnsupportedMedia:  http.StatusUnsupportedMediaType,
	shared.EInvalid:           http.StatusUnprocessableEntity,
	shared.ERateLimited:       http.StatusTooManyRequests,
	shared.ESpendCapExceeded:  http.StatusPaymentRequired,
	shared.EUnavailable:       http.StatusServiceUnavailable,
	shared.EInternal:          http.StatusInternalServerError,
}

// Status returns the HTTP status for an error code.
func Status(c shared.Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// NewProblem is the one constructor of problem objects: the type, title
// and status of err's code, its client-safe message and fields (an error
// that is not an application error shows only "internal error"), the
// path it answers and the request id.
func NewProblem(err error, path, requestID string) Problem {
	code := shared.ErrorCode(err)
	p := Problem{
		Type:      ProblemType(code),
		Title:     http.StatusText(Status(code)),
		Status:    Status(code),
		Instance:  path,
		RequestID: requestID,
	}
	var e *shared.Error
	if errors.As(err, &e) {
		p.Detail = e.Message
		p.Errors = e.Fields
	}
	if code == shared.EInternal {
		p.Detail = "internal error; quote the request id when reporting it"
	}
	return p
}

// Error writes err as a problem response: the one place errors become
// statuses. Application errors show their message; anything else is a
// bug: logged once with the request id, shown to the client only as
// "internal error". Dependency failures are logged at warning level with
// their cause. The request id is the request's (Middleware), or else the
// X-Request-Id already set on the response (the gateways).
func Error(w http.ResponseWriter, r *http.Request, err error) {
	id := RequestID(r.Context())
	if id == "" {
		id = w.Header().Get(RequestIDHeader)
	}
	p := NewProblem(err, r.URL.Path, id)
	log := Logger(r.Context())
	switch code := shared.ErrorCode(err); code {
	case shared.EInternal:
		log.ErrorContext(r.Context(), "internal error", "error", err.Error(), "request_id", id)
	case shared.EUnavailable:
		var e *shared.Error
		if errors.As(err, &e) && e.Err != nil {
			log.WarnContext(r.Context(), "dependency unavailable", "error", e.Err.Error())
		}
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	case shared.EUnauthorized:
		// Operator routes set their own challenge (Bearer) first.
		if w.Header().Get("WWW-Authenticate") == "" {
			w.Header().Set("WWW-Authenticate", `ApiKey header="X-API-Key"`)
		}
	}
	WriteProblem(w, p)
}

// WriteProblem writes p, built by NewProblem, as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	w.Write(append(body, '\n'))
}

// JSON writes v as application/json with status.
func JSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding response", "error", err)
		WriteProblem(w, NewProblem(err, "", w.Header().Get(RequestIDHeader)))
		return
	}
	RawJSON(w, status, append(body, '\n'))
}

// RawJSON writes body, already-encoded JSON ending in a newline, with the
// headers JSON sends. Hot paths that encode without reflection use it.
func RawJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
