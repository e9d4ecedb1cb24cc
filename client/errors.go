package ratebill

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrUnavailable is matched (with errors.Is) by every error that means the
// platform could not give an answer: a transport error, the client's
// timeout, a 5xx answer, or a 200 answer that does not decode. A protected
// API fails closed (503) or open on it; it is never the client's fault.
var ErrUnavailable = errors.New("ratebill: platform unavailable")

// APIError is a non-2xx answer of the platform: an RFC 9457 problem
// (application/problem+json). A 5xx APIError also matches ErrUnavailable.
//
// On POST /verify a 4xx means the call itself was refused before a
// decision: 400 invalid-request-id (the id breaks the request-id rule), 409
// request-id-conflict (the id was used with a different cost), 422 a
// missing key or an invalid field. On POST /verify/release a 404 is an
// unknown token and a 409 a call released already or after its 15-minute
// window.
type APIError struct {
	// Status is the HTTP status of the answer.
	Status int
	// Type is the problem type URI, such as
	// "urn:problem-type:ratebill:request-id-conflict"; "about:blank" when
	// the answer was not a problem document.
	Type string
	// Title is the short summary of the problem type.
	Title string
	// Detail explains this occurrence.
	Detail string
	// RequestID is the request id the platform logged the answer under.
	RequestID string
	// Errors lists the invalid fields of a 422.
	Errors []FieldError
}

// problem is the JSON shape of an RFC 9457 problem as the platform writes
// it.
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// Error returns the status, title and detail.
func (e *APIError) Error() string {
	s := fmt.Sprintf("ratebill: %d %s", e.Status, e.Title)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Is reports whether e is a 5xx when target is ErrUnavailable.
func (e *APIError) Is(target error) bool {
	return target == ErrUnavailable && e.Status >= http.StatusInternalServerError
}
