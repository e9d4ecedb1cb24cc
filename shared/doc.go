// Package shared holds the platform's domain types and its one application
// error type. Every function imports the packages below it:
//
//   - config: the environment, validated at start-up
//   - apikey: key format, checksum and hashing (pure)
//   - billing: exact pricing of metered requests (pure)
//   - ratelimit: the atomic Redis limiter
//   - postgres: the pool, migrations and the storage boundary
//   - usage: group-committed usage recording
//   - auth: key authentication with a bounded per-instance cache
//   - httpapi: problem responses, middleware, rate-limit headers
//   - instance: one function instance's lazily built dependencies
//   - routes: the public routing table
//
// Nothing in shared knows which function it runs in.
package shared
