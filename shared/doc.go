// Package shared holds the platform's domain vocabulary: its types (User,
// Principal, UsageEvent, UsageResult, Period) and its one application
// error type (Error with a Code). Storage returns these codes directly;
// package httpapi maps them onto problem responses in one place.
//
// The packages below it, in the order they depend on each other (each
// imports only packages listed before it):
//
//   - config: the environment, validated at start-up
//   - apikey, pricing: key format and exact pricing (pure, no I/O)
//   - lazy: a value built once on first use; failures are retried
//   - postgres: the pool (built lazily), migrations and the queries
//   - redisconn: the Redis client options (Memorystore AUTH and TLS)
//   - ratelimit: the atomic Redis limiter
//   - auth: key authentication with a bounded per-instance cache
//   - meter: group-committed usage recording
//   - httpapi: problem responses, decoding, request ids, request logs
//   - gate: the metering gate every authenticated or metered route uses
//   - deps: one instance's dependencies, built without I/O, and Close
//   - routes: the public routing table
//   - serve: the router built from the table, probes, the http.Server
//     and its shutdown
//
// Nothing in shared knows which function it runs in.
package shared
