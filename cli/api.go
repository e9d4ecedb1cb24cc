package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponse bounds what the CLI reads of one answer.
const maxResponse = 32 << 20

// api is the operator API at base, called with token.
type api struct {
	base    string // scheme://host[:port][/prefix], no trailing slash
	token   string
	http    *http.Client
	timeout time.Duration // per request; 0: none
}

// APIError is a refusal by the API: a non-2xx answer. Problem holds the
// problem+json body when there was one.
type APIError struct {
	Method, Path string
	Status       int
	Problem      *Problem
	Body         string // the start of a body that was not a problem
}

// Problem is the API's problem+json body (RFC 9457), as the handlers
// write it (shared/httpapi.Problem).
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors"`
}

// FieldError names one invalid field of a refused request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// problemPrefix starts every problem type of the platform.
const problemPrefix = "urn:problem-type:ratebill:"

// Code is the problem's short type ("forbidden", "not-found"), or its
// title when the type is not one of the platform's.
func (p *Problem) Code() string {
	if c, ok := strings.CutPrefix(p.Type, problemPrefix); ok && c != "" {
		return c
	}
	return p.Title
}

// Error is one line: the status, the problem's type and detail, its
// field errors and request id.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.Status)
	if p := e.Problem; p != nil {
		if c := p.Code(); c != "" {
			fmt.Fprintf(&b, " %s", c)
		}
		if p.Detail != "" {
			fmt.Fprintf(&b, ": %s", p.Detail)
		}
		for i, f := range p.Errors {
			sep := "; "
			if i == 0 {
				sep = " ("
			}
			fmt.Fprintf(&b, "%s%s %s", sep, f.Field, f.Detail)
			if i == len(p.Errors)-1 {
				b.WriteString(")")
			}
		}
		if p.RequestID != "" {
			fmt.Fprintf(&b, " [request %s]", p.RequestID)
		}
		return oneLine(b.String())
	}
	fmt.Fprintf(&b, " %s", http.StatusText(e.Status))
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return oneLine(b.String())
}

// UnreachableError is an API that did not answer: the request never got
// a response (refused connection, unknown host, TLS, --timeout).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	msg := e.Err.Error()
	var ue *url.Error
	if errors.As(e.Err, &ue) {
		msg = ue.Err.Error() // url.Error repeats the method and URL
	}
	return oneLine(fmt.Sprintf("cannot reach the API at %s: %s", e.URL, msg))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// oneLine keeps an error message on one line of the terminal.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// call sends method path?query with body (JSON-encoded unless nil) and
// returns the answer's body when its status is 2xx.
func (c *api) call(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("building the request: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "ratebill-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &UnreachableError{URL: c.base, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &UnreachableError{URL: c.base, Err: fmt.Errorf("reading the answer to %s %s: %w", method, path, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return b, nil
	}
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" {
		var p Problem
		if json.Unmarshal(b, &p) == nil {
			e.Problem = &p
		}
	}
	if e.Problem == nil {
		s := strings.TrimSpace(string(b))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Body = s
	}
	return nil, e
}

// get is call for a GET whose JSON answer is decoded into out (when out
// is not nil); the raw body is returned for --json.
func (c *api) get(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	b, err := c.call(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, err
	}
	return b, decode(b, out)
}

// send is call for a change; its JSON answer (if any) goes into out.
func (c *api) send(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	b, err := c.call(ctx, method, path, nil, body)
	if err != nil {
		return nil, err
	}
	return b, decode(b, out)
}

// responseError is a 2xx answer the CLI could not read.
type responseError struct{ err error }

func (e *responseError) Error() string { return "unexpected answer from the API: " + e.err.Error() }

func decode(b []byte, out any) error {
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &responseError{err}
	}
	return nil
}
