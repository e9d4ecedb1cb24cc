package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// lyingBilling admits everything but bills nothing.
func lyingBilling() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/users/":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"api_key":"k"}`)
		case "/me":
			fmt.Fprint(w, `{"rate_limit":{"limit":1000,"window_seconds":60}}`)
		case "/billing":
			fmt.Fprint(w, `{"requests":0}`)
		default:
			fmt.Fprint(w, `{}`)
		}
	})
}

func TestExitStatus(t *testing.T) {
	srv := httptest.NewServer(lyingBilling())
	defer srv.Close()
	t.Setenv("API_BASE", srv.URL)
	t.Setenv("LT_USERS", "2")
	t.Setenv("LT_REQUESTS", "10")
	t.Setenv("LT_CONCURRENCY", "2")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"billing disagrees", []string{"-q"}, 1},
		{"billing disagrees, json", []string{"-json"}, 1},
		{"checks off", []string{"-q", "-no-checks", "-tsv"}, 0},
		{"bad flag", []string{"-nope"}, 2},
		{"bad base", []string{"-q", "-base", "ftp://x"}, 2},
	}
	for _, tt := range tests {
		if got := run(tt.args); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
	}
	t.Setenv("LT_USERS", "zero")
	if got := run([]string{"-q"}); got != 2 {
		t.Errorf("bad LT_USERS: exit %d, want 2", got)
	}
}
