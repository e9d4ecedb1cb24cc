// Command bareserver is the baseline of the end-to-end benchmark: a bare
// net/http server that answers every GET with a small JSON body and every
// POST with 201 and a made-up api_key, so that the load tool runs against
// it unchanged (with -no-checks). What the platform adds on top of this is
// the cost of the API: keys, limits, metering.
//
//	go run ./tools/cmd/bareserver -addr 127.0.0.1:8090
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Printf("bareserver: listening on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}

// body is about the size of GET /usage's answer's head: a small object.
var body = []byte(`{"user_id":1,"username":"bare","total_requests":1,"status":"ok"}` + "\n")

var created = []byte(`{"id":1,"username":"bare","api_key":"bare-key"}` + "\n")

// handler answers every request without any I/O.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			h.Set("Content-Length", strconv.Itoa(len(created)))
			w.WriteHeader(http.StatusCreated)
			w.Write(created)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}
