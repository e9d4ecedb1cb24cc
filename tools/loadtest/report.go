package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	mode := "closed loop"
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f req/s offered", r.Rate)
	}
	fmt.Fprintf(w, "GET %s%s: %d users, concurrency %d, %s\n", r.Base, r.Endpoint, r.Users, r.Concurrency, mode)
	fmt.Fprintf(w, "requests   %d in %.2f s = %.0f req/s", r.Requests, r.Seconds, r.RPS)
	if r.Unsent > 0 {
		fmt.Fprintf(w, " (%d not sent: time limit)", r.Unsent)
	}
	fmt.Fprintln(w)
	l := r.Latency
	fmt.Fprintf(w, "latency    p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  mean %.2f ms\n", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	fmt.Fprintf(w, "cpu        client %.1f µs/request", r.ClientCPUPerRequest)
	if r.ServerCPUPerRequest > 0 {
		fmt.Fprintf(w, ", server %.1f µs/request", r.ServerCPUPerRequest)
		names := make([]string, 0, len(r.ServerCPUByProcess))
		for n := range r.ServerCPUByProcess {
			names = append(names, n)
		}
		sort.Slice(names, func(a, b int) bool { return r.ServerCPUByProcess[names[a]] > r.ServerCPUByProcess[names[b]] })
		var parts []string
		for _, n := range names {
			if v := r.ServerCPUByProcess[n]; v >= 0.05 {
				parts = append(parts, fmt.Sprintf("%s %.1f", n, v))
			}
		}
		if len(parts) > 1 {
			fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
		}
	}
	fmt.Fprintln(w)
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, r.Status[c]))
	}
	fmt.Fprintf(w, "status     %s\n", strings.Join(parts, "  "))
	if len(r.Errors) > 0 {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(w, "error      %d× %s\n", r.Errors[k], k)
		}
	}
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "check %s %s: %s\n", mark, c.Name, c.Detail)
		for _, e := range c.Errors {
			fmt.Fprintf(w, "             %s\n", e)
		}
	}
}
