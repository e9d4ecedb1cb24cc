package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	env := func(k string) string {
		if k == "PORT" {
			return port
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"default URL is /readyz on $PORT", nil, 0},
		{"explicit healthy URL", []string{srv.URL + "/readyz"}, 0},
		{"503 is unhealthy", []string{srv.URL + "/livez"}, 1},
		{"nothing listening", []string{"http://127.0.0.1:1/readyz"}, 1},
	} {
		if got := run(tc.args, env, io.Discard); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := defaultURL(func(string) string { return "" }); got != "http://127.0.0.1:8080/readyz" {
		t.Errorf("default URL without PORT: %s", got)
	}
}
