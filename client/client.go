package ratebill

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

// DefaultTimeout bounds one call to the platform when no WithTimeout
// option is given.
const DefaultTimeout = 2 * time.Second

// maxAnswer bounds the body of an answer read from the platform.
const maxAnswer = 1 << 20

// Client calls the platform's /verify endpoints. It is safe for concurrent
// use; create one per process and reuse it, so connections are reused.
type Client struct {
	verifyURL  string
	releaseURL string
	hc         *http.Client
	timeout    time.Duration
	userAgent  string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc instead of
// http.DefaultClient, for a custom transport, proxy or TLS configuration.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds each call to the platform (DefaultTimeout, 2 s,
// without it). A call that runs out of time fails with ErrUnavailable. A
// zero or negative d leaves only the caller's context as a bound.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithUserAgent sets the User-Agent header of the Client's requests.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a Client for the platform at baseURL, such as
// "https://api.ratebill.example". The URL must be absolute http or https;
// a path in it is kept as a prefix of /verify.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ratebill: base URL %q: want an absolute http or https URL without query", baseURL)
	}
	base := strings.TrimRight(u.String(), "/")
	c := &Client{
		verifyURL:  base + "/verify",
		releaseURL: base + "/verify/release",
		hc:         http.DefaultClient,
		timeout:    DefaultTimeout,
		userAgent:  "ratebill-go",
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Verify asks the platform whether the call made with key may be served,
// and meters it when it may. A well-formed call always yields a result,
// admitted or not: check Valid, and pass result.Headers on to the caller.
//
// The error is an *APIError for a non-2xx answer; it matches
// ErrUnavailable (errors.Is) when the platform could not decide: a 5xx,
// a transport error or the Client's timeout. A canceled or expired ctx
// yields ctx's error, which is not ErrUnavailable unless the Client's own
// timeout fired first.
func (c *Client) Verify(ctx context.Context, key string, o VerifyOptions) (*VerifyResult, error) {
	if o.Cost < 0 {
		return nil, fmt.Errorf("ratebill: cost %d: must not be negative", o.Cost)
	}
	body, err := json.Marshal(verifyRequest{Key: key, Cost: o.Cost, Endpoint: o.Endpoint, RequestID: o.RequestID})
	if err != nil {
		return nil, fmt.Errorf("ratebill: encoding verify request: %w", err)
	}
	var res VerifyResult
	h, err := c.post(ctx, c.verifyURL, body, &res)
	if err != nil {
		return nil, err
	}
	res.Headers = http.Header{}
	for _, name := range resultHeaders {
		if v := h.Values(name); len(v) > 0 {
			res.Headers[name] = append([]string(nil), v...)
		}
	}
	return &res, nil
}

// Release undoes the metering of an admitted call, given the
// ReleaseToken of its VerifyResult, so that the call is not billed: for
// instance when the protected API failed to serve it. Only the holder of
// the token can release, once, within 15 minutes of the decision.
//
// The error is an *APIError with Status 404 for an unknown token and 409
// for a call already released or past its release window; it matches
// ErrUnavailable when the platform could not be reached.
func (c *Client) Release(ctx context.Context, token string) error {
	if token == "" {
		return errors.New("ratebill: empty release token")
	}
	body, err := json.Marshal(releaseRequest{ReleaseToken: token})
	if err != nil {
		return fmt.Errorf("ratebill: encoding release request: %w", err)
	}
	var res releaseResult
	if _, err := c.post(ctx, c.releaseURL, body, &res); err != nil {
		return err
	}
	if !res.Released {
		return fmt.Errorf("ratebill: release answered 200 without \"released\": true: %w", ErrUnavailable)
	}
	return nil
}

// post sends body to url and decodes a 2xx JSON answer into out, returning
// the answer's headers. Anything else becomes an error as Verify
// documents.
func (c *Client) post(ctx context.Context, url string, body []byte, out any) (http.Header, error) {
	parent := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("ratebill: building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(parent, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, c.transportError(parent, url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, apiError(resp, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("ratebill: decoding the %d answer of %s: %w: %w", resp.StatusCode, url, ErrUnavailable, err)
	}
	return resp.Header, nil
}

// transportError classifies a failure to get an answer: the caller's own
// cancellation is returned as is, anything else is ErrUnavailable.
func (c *Client) transportError(parent context.Context, url string, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("ratebill: calling %s: %w", url, perr)
	}
	return fmt.Errorf("ratebill: calling %s: %w: %w", url, ErrUnavailable, err)
}

// apiError turns a non-2xx answer into an *APIError, from its problem
// document when it has one (a proxy or load balancer in front of the
// platform may answer with HTML).
func apiError(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, Type: "about:blank", Title: http.StatusText(resp.StatusCode), RequestID: resp.Header.Get("X-Request-Id")}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p problem
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(body, &p) == nil {
		if p.Type != "" {
			e.Type = p.Type
		}
		if p.Title != "" {
			e.Title = p.Title
		}
		e.Detail = p.Detail
		if p.RequestID != "" {
			e.RequestID = p.RequestID
		}
		e.Errors = p.Errors
	}
	return e
}
