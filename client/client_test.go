package ratebill_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	ratebill "github.com/ratebill/platform/client"
)

func TestNewRejectsBadBaseURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "api.example.com", "ftp://api.example.com", "http://", "http://x/?q=1", "://x", "http://x/#frag"} {
		if _, err := ratebill.New(u); err == nil {
			t.Errorf("New(%q): no error, want one", u)
		}
	}
}

// TestVerifyDecodesTheWireContract checks every field of the documented
// 200 answer, that unknown fields and codes decode, that only the
// rate-limit headers and X-Request-Id are kept, and the request body.
func TestVerifyDecodesTheWireContract(t *testing.T) {
	t.Parallel()
	var gotBody string
	var gotPath, gotCT string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotPath, gotCT = string(b), r.URL.Path, r.Header.Get("Content-Type")
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("RateLimit-Policy", `"default";q=50;w=60`)
		h.Set("RateLimit", `"default";r=49;t=30`)
		h.Set("X-RateLimit-Limit", "50")
		h.Set("X-RateLimit-Remaining", "49")
		h.Set("X-RateLimit-Reset", "30")
		h.Set("X-Request-Id", "req-12345678")
		h.Set("Set-Cookie", "platform=secret")
		io.WriteString(w, `{"valid":true,"code":"VALID","request_id":"req-12345678","user":{"id":1,"username":"alice"},
			"cost":5,"ratelimit":{"limit":50,"remaining":49,"resets_at":"2025-06-01T12:00:00Z","retry_after":0},
			"total_units":12,"replayed":false,"release_token":"rt_abc","added_later":{"x":1}}`)
	}))
	defer srv.Close()
	c, err := ratebill.New(srv.URL + "/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(context.Background(), "sk_k", ratebill.VerifyOptions{Cost: 5, Endpoint: "GET /v1/forecast", RequestID: "req-12345678"})
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != "/prefix/verify" || gotCT != "application/json" {
		t.Errorf("request to %s with Content-Type %q, want /prefix/verify, application/json", gotPath, gotCT)
	}
	if want := `{"key":"sk_k","cost":5,"endpoint":"GET /v1/forecast","request_id":"req-12345678"}`; gotBody != want {
		t.Errorf("body %s, want %s", gotBody, want)
	}
	want := &ratebill.VerifyResult{
		Valid: true, Code: ratebill.CodeValid, RequestID: "req-12345678",
		User: &ratebill.User{ID: 1, Username: "alice"}, Cost: 5,
		RateLimit:  &ratebill.RateLimit{Limit: 50, Remaining: 49, ResetsAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)},
		TotalUnits: 12, ReleaseToken: "rt_abc",
		Headers: http.Header{
			"Ratelimit-Policy": {`"default";q=50;w=60`}, "Ratelimit": {`"default";r=49;t=30`},
			"X-Ratelimit-Limit": {"50"}, "X-Ratelimit-Remaining": {"49"}, "X-Ratelimit-Reset": {"30"},
			"X-Request-Id": {"req-12345678"},
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result\n%+v\nwant\n%+v", res, want)
	}
}

func TestVerifyOmitsEmptyOptionsAndKeepsUnknownCodes(t *testing.T) {
	t.Parallel()
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"valid":false,"code":"QUOTA_FROZEN","request_id":"plat-1","user":null,"cost":0,"ratelimit":null,"total_units":0,"replayed":false}`)
	}))
	defer srv.Close()
	c, _ := ratebill.New(srv.URL)
	res, err := c.Verify(context.Background(), "sk_k", ratebill.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gotBody != `{"key":"sk_k"}` {
		t.Errorf("body %s, want only the key", gotBody)
	}
	if res.Valid || res.Code != "QUOTA_FROZEN" || res.User != nil || res.RateLimit != nil || res.ReleaseToken != "" || len(res.Headers) != 0 {
		t.Errorf("result %+v; want the unknown code kept, nothing else", res)
	}
	if s := res.Code.HTTPStatus(); s != http.StatusForbidden {
		t.Errorf("unknown code maps to %d, want 403", s)
	}
}

func TestVerifyNegativeCostIsRefusedLocally(t *testing.T) {
	t.Parallel()
	f := newFakePlatform(t)
	_, err := f.client(t).Verify(context.Background(), keyValid, ratebill.VerifyOptions{Cost: -1})
	if err == nil || errors.Is(err, ratebill.ErrUnavailable) || f.verifies.Load() != 0 {
		t.Errorf("negative cost: err %v, %d calls; want a local error", err, f.verifies.Load())
	}
}

// TestVerifyErrors checks how each kind of failure is reported: problems
// as *APIError, and which of them mean "platform unavailable".
func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	problem := func(status int, typ string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			io.WriteString(w, `{"type":"urn:problem-type:ratebill:`+typ+`","title":"T","status":1,"detail":"D","request_id":"rid-0000001",
				"errors":[{"field":"key","detail":"is required"}]}`)
		}
	}
	tests := []struct {
		name            string
		handler         http.HandlerFunc
		ctx             func() (context.Context, context.CancelFunc)
		wantStatus      int // 0: not an *APIError
		wantType        string
		wantUnavailable bool
		wantCanceled    bool
	}{
		{name: "503 problem", handler: problem(503, "service-unavailable"), wantStatus: 503, wantType: "urn:problem-type:ratebill:service-unavailable", wantUnavailable: true},
		{name: "500 problem", handler: problem(500, "internal-error"), wantStatus: 500, wantType: "urn:problem-type:ratebill:internal-error", wantUnavailable: true},
		{name: "400 invalid request id", handler: problem(400, "invalid-request-id"), wantStatus: 400, wantType: "urn:problem-type:ratebill:invalid-request-id"},
		{name: "409 conflict", handler: problem(409, "request-id-conflict"), wantStatus: 409, wantType: "urn:problem-type:ratebill:request-id-conflict"},
		{name: "422 missing key", handler: problem(422, "validation-failed"), wantStatus: 422, wantType: "urn:problem-type:ratebill:validation-failed"},
		{name: "502 HTML from a load balancer", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		}, wantStatus: 502, wantType: "about:blank", wantUnavailable: true},
		{name: "200 that is not JSON", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>captive portal</html>")
		}, wantUnavailable: true},
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}, wantUnavailable: true},
		{name: "caller cancels", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, wantCanceled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// With the body read, the server notices a client that
				// hangs up and cancels r.Context().
				_, _ = io.Copy(io.Discard, r.Body)
				tt.handler(w, r)
			}))
			defer srv.Close()
			c, _ := ratebill.New(srv.URL, ratebill.WithTimeout(200*time.Millisecond))
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			res, err := c.Verify(ctx, "sk_k", ratebill.VerifyOptions{})
			if err == nil || res != nil {
				t.Fatalf("Verify: %+v, %v; want an error", res, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Verify took %v; want the timeout to bound it", d)
			}
			if got := errors.Is(err, ratebill.ErrUnavailable); got != tt.wantUnavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tt.wantUnavailable)
			}
			if tt.wantCanceled && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err %v; want the caller's context error", err)
			}
			var apiErr *ratebill.APIError
			if got := errors.As(err, &apiErr); got != (tt.wantStatus != 0) {
				t.Fatalf("errors.As(%v, *APIError) = %v, want %v", err, got, tt.wantStatus != 0)
			}
			if apiErr != nil && (apiErr.Status != tt.wantStatus || apiErr.Type != tt.wantType) {
				t.Errorf("APIError %+v; want status %d type %s", apiErr, tt.wantStatus, tt.wantType)
			}
			if apiErr != nil && tt.wantType != "about:blank" &&
				(apiErr.Title != "T" || apiErr.Detail != "D" || apiErr.RequestID != "rid-0000001" || len(apiErr.Errors) != 1 || apiErr.Errors[0].Field != "key") {
				t.Errorf("APIError %+v; want the problem's fields", apiErr)
			}
			if apiErr != nil && !strings.Contains(apiErr.Error(), strconv.Itoa(tt.wantStatus)) {
				t.Errorf("Error() = %q", apiErr.Error())
			}
		})
	}
}

func TestVerifyUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := ratebill.New(url)
	if _, err := c.Verify(context.Background(), "sk_k", ratebill.VerifyOptions{}); !errors.Is(err, ratebill.ErrUnavailable) {
		t.Errorf("Verify against a closed port: %v, want ErrUnavailable", err)
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	f := newFakePlatform(t)
	c := f.client(t)
	ctx := context.Background()
	res, err := c.Verify(ctx, keyValid, ratebill.VerifyOptions{})
	if err != nil || res.ReleaseToken == "" {
		t.Fatalf("Verify: %+v, %v; want a release token", res, err)
	}
	if err := c.Release(ctx, res.ReleaseToken); err != nil {
		t.Fatalf("first release: %v", err)
	}
	for _, tt := range []struct {
		name, token string
		wantStatus  int
	}{
		{"again", res.ReleaseToken, http.StatusConflict},
		{"unknown", "rt_nope", http.StatusNotFound},
	} {
		err := c.Release(ctx, tt.token)
		var apiErr *ratebill.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus || errors.Is(err, ratebill.ErrUnavailable) {
			t.Errorf("release %s: %v; want a %d APIError", tt.name, err, tt.wantStatus)
		}
	}
	before := f.releases.Load()
	if err := c.Release(ctx, ""); err == nil || f.releases.Load() != before {
		t.Errorf("empty token: %v after %d calls; want a local error", err, f.releases.Load()-before)
	}
}
