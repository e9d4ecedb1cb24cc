// Command healthcheck is the container health check of the function images,
// which are distroless and carry no shell, curl or wget. It GETs a URL
// (default http://127.0.0.1:$PORT/readyz) and exits 0 on a 2xx answer, 1
// otherwise:
//
//	HEALTHCHECK CMD ["/healthcheck"]
//	healthcheck: {test: ["CMD", "/healthcheck", "http://127.0.0.1:8080/livez"]}
//
// It imports only the standard library, so the Dockerfile builds it from
// this one file with GOWORK=off and without this module's dependencies.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// run checks the URL in args[0] (or the default readiness URL) and returns
// the process exit code.
func run(args []string, getenv func(string) string, stderr io.Writer) int {
	url := defaultURL(getenv)
	if len(args) > 0 {
		url = args[0]
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "healthcheck: %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}

// defaultURL is the readiness endpoint of the function in this container.
func defaultURL(getenv func(string) string) string {
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	return "http://127.0.0.1:" + port + "/readyz"
}
