package ratebill_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	ratebill "github.com/ratebill/platform/client"
)

// examplePlatform stands in for the platform in the examples: every key
// starting with "sk_good" is admitted, any other is unknown.
func examplePlatform() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/verify/release" {
			io.WriteString(w, `{"released":true,"request_id":"req-00000001","cost":1}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"key":"sk_good`) {
			w.Header().Set("X-RateLimit-Limit", "50")
			w.Header().Set("X-RateLimit-Remaining", "49")
			io.WriteString(w, `{"valid":true,"code":"VALID","request_id":"req-00000001","user":{"id":1,"username":"alice"},
				"cost":1,"ratelimit":{"limit":50,"remaining":49,"resets_at":"2025-06-01T12:00:00Z","retry_after":0},
				"total_units":12,"replayed":false,"release_token":"rt_example"}`)
			return
		}
		io.WriteString(w, `{"valid":false,"code":"NOT_FOUND","request_id":"req-00000002","user":null,"cost":0,"ratelimit":null,"total_units":0,"replayed":false}`)
	}))
}

// Verify a key from any server code, and act on the decision.
func ExampleClient_Verify() {
	platform := examplePlatform()
	defer platform.Close()

	c, err := ratebill.New(platform.URL)
	if err != nil {
		log.Fatal(err)
	}
	for _, key := range []string{"sk_good_key", "sk_unknown_key"} {
		res, err := c.Verify(context.Background(), key, ratebill.VerifyOptions{Cost: 1, Endpoint: "GET /v1/forecast"})
		switch {
		case errors.Is(err, ratebill.ErrUnavailable):
			fmt.Println("platform unavailable: answer 503")
		case err != nil:
			fmt.Println("refused:", err)
		case !res.Valid:
			fmt.Printf("%s: denied (%s), answer %d\n", key, res.Code, res.Code.HTTPStatus())
		default:
			fmt.Printf("%s: admitted for %s, %d of %d units left\n", key, res.User.Username, res.RateLimit.Remaining, res.RateLimit.Limit)
		}
	}
	// Output:
	// sk_good_key: admitted for alice, 49 of 50 units left
	// sk_unknown_key: denied (NOT_FOUND), answer 401
}

// Release an admitted call that could not be served, so that it is not
// billed.
func ExampleClient_Release() {
	platform := examplePlatform()
	defer platform.Close()

	c, _ := ratebill.New(platform.URL)
	ctx := context.Background()
	res, err := c.Verify(ctx, "sk_good_key", ratebill.VerifyOptions{})
	if err != nil || !res.Valid {
		log.Fatal(res, err)
	}
	// ... the work failed ...
	if err := c.Release(ctx, res.ReleaseToken); err != nil {
		var apiErr *ratebill.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
			fmt.Println("released already, or too late")
		}
		return
	}
	fmt.Println("released")
	// Output: released
}

// Protect a net/http handler: the key, limit and meter are checked before
// the handler runs, and the decision is in the request context.
func ExampleMiddleware() {
	platform := examplePlatform()
	defer platform.Close()

	c, err := ratebill.New(platform.URL)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/forecast", func(w http.ResponseWriter, r *http.Request) {
		res, _ := ratebill.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s\n", res.User.Username)
	})
	protect := ratebill.Middleware(c, ratebill.MiddlewareOptions{
		Cost: func(r *http.Request) int64 { return 1 },
	})
	api := httptest.NewServer(protect(mux))
	defer api.Close()

	for _, key := range []string{"sk_good_key", "sk_unknown_key", ""} {
		req, _ := http.NewRequest("GET", api.URL+"/v1/forecast", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Printf("%d remaining=%s %s", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"), body)
			continue
		}
		var problem struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &problem)
		fmt.Printf("%d %s %s\n", resp.StatusCode, resp.Header.Get("Content-Type"), problem.Type)
	}
	// Output:
	// 200 remaining=49 hello alice
	// 401 application/problem+json urn:problem-type:ratebill:not-found
	// 401 application/problem+json urn:problem-type:ratebill:missing-key
}
