// Package ratebill protects and meters an API with the ratebill platform:
// each call to the API is checked against the caller's API key, rate
// limit and spend cap, and metered in cost units for billing, by one
// round trip to the platform's POST /verify.
//
// The package depends on the standard library only.
//
// # Client
//
// A Client calls the platform:
//
//	c, err := ratebill.New("https://api.ratebill.example")
//	res, err := c.Verify(ctx, key, ratebill.VerifyOptions{Cost: 5, Endpoint: "GET /v1/forecast/daily"})
//	switch {
//	case errors.Is(err, ratebill.ErrUnavailable):
//		// the platform could not decide: fail closed (503) or open
//	case err != nil:
//		// *ratebill.APIError: the call itself was refused (400, 409, 422)
//	case !res.Valid:
//		// denied: res.Code says why, res.Code.HTTPStatus() what to answer
//	default:
//		// admitted and metered; res.User, res.RateLimit, res.ReleaseToken
//	}
//
// Every well-formed call is answered 200 with a VerifyResult, admitted or
// not; Valid is the verdict and Code the reason. The platform may add
// codes: an unknown Code decodes unchanged, and Code.HTTPStatus maps it
// to 403. VerifyResult.Headers carries the platform's rate-limit headers
// (RateLimit-Policy, RateLimit, X-RateLimit-Limit, X-RateLimit-Remaining,
// X-RateLimit-Reset, and Retry-After on a denial) for the API to pass on to
// its own client.
//
// A non-2xx answer is an *APIError holding the platform's RFC 9457
// problem. Everything that means "the platform could not decide" matches
// ErrUnavailable: a 5xx, a transport error, the Client's timeout
// (DefaultTimeout, 2 s, unless WithTimeout says otherwise) and a 200 that
// does not decode.
//
// # Costs, request ids and replays
//
// A call costs 1 unit unless VerifyOptions.Cost says otherwise; the rate
// limit, usage and bills all count units, and a call is refused only when
// its cost does not fit.
//
// VerifyOptions.RequestID is the call's idempotency key, 8 to 128
// characters of A-Z a-z 0-9 . _ : - (ValidRequestID). The platform
// remembers ids per user for 24 hours: a retry with the same id gets the
// first decision again, costs nothing and says so (Replayed, Cost 0), at
// most 3 times; after that it is denied with CodeDuplicate. The same id
// with a different cost is a 409 APIError (request-id-conflict).
//
// # Release
//
// An admitted call carries a ReleaseToken. When the API then fails to
// serve the call, Client.Release undoes its metering so the API's client
// is not billed for the API's failure. A token releases once (a repeat is
// a 409 APIError, an unknown token a 404), within 15 minutes of the
// decision.
//
// # Middleware
//
// Middleware does all of the above for a net/http handler:
//
//	c, err := ratebill.New(os.Getenv("RATEBILL_URL"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	protect := ratebill.Middleware(c, ratebill.MiddlewareOptions{
//		Cost: func(r *http.Request) int64 { return 1 },
//	})
//	http.ListenAndServe(":8080", protect(mux))
//
// For each request it
//
//   - takes the request id from X-Request-Id (400 invalid-request-id when
//     it breaks the rule, without calling the platform), or creates one,
//     and sets it on the request and the response;
//   - reads the key from X-API-Key (MiddlewareOptions.KeyHeader): none is
//     a 401 without calling the platform;
//   - verifies the call with its cost (MiddlewareOptions.Cost, 1 by
//     default) and endpoint label (MiddlewareOptions.Endpoint, by default
//     the method and route pattern);
//   - copies the rate-limit headers onto the response, admitted or not;
//   - answers a denial itself, as application/problem+json with type
//     urn:problem-type:ratebill:<code in kebab case>: 401 with
//     WWW-Authenticate for MALFORMED_KEY, NOT_FOUND, REVOKED and EXPIRED,
//     403 SUSPENDED (and unknown codes), 429 RATE_LIMITED with Retry-After,
//     402 SPEND_CAP_EXCEEDED, 409 DUPLICATE;
//   - serves an admitted call (a replay too, with Idempotent-Replayed:
//     true) with the VerifyResult in the request context (FromContext);
//   - releases the call, before it returns, when the handler answered 5xx
//     or panicked, unless MiddlewareOptions.KeepOnUpstream5xx is set;
//   - fails closed when the platform is unavailable: 503 with Retry-After,
//     the handler not called. With MiddlewareOptions.FailOpen the handler
//     is called instead with a result whose Unverified is set, and the
//     call is neither limited nor metered. The platform's 400 and 409
//     answers (about the request id) reach the client with their status;
//     any other refusal is a 500, logged.
//
// Everything the middleware answers itself has the platform's problem
// shape: type, title, status, detail, instance and request_id.
package ratebill
