package usage

import (
	"strconv"
	"time"
)

// appendJSON appends r encoded exactly as encoding/json would
// (TestVerifyAppendJSONMatchesEncodingJSON holds it to that), without
// reflection: the answer of every POST /verify, the platform's hot path
// for protected APIs.
func (r VerifyResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, r.Valid)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, r.Code)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, r.RequestID)
	b = append(b, `,"user":`...)
	if r.User == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, r.User.ID, 10)
		b = append(b, `,"username":`...)
		b = appendJSONString(b, r.User.Username)
		b = append(b, '}')
	}
	b = append(b, `,"cost":`...)
	b = strconv.AppendInt(b, r.Cost, 10)
	b = append(b, `,"ratelimit":`...)
	if r.RateLimit == nil {
		b = append(b, "null"...)
	} else {
		l := r.RateLimit
		b = append(b, `{"limit":`...)
		b = strconv.AppendInt(b, l.Limit, 10)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, l.Remaining, 10)
		b = append(b, `,"resets_at":"`...)
		b = l.ResetsAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","retry_after":`...)
		b = strconv.AppendInt(b, l.RetryAfter, 10)
		b = append(b, '}')
	}
	b = append(b, `,"total_units":`...)
	b = strconv.AppendInt(b, r.TotalUnits, 10)
	b = append(b, `,"replayed":`...)
	b = strconv.AppendBool(b, r.Replayed)
	if r.Released {
		b = append(b, `,"released":true`...)
	}
	if r.ReleaseToken != "" {
		b = append(b, `,"release_token":`...)
		b = appendJSONString(b, r.ReleaseToken)
	}
	if r.Budget != nil {
		b = append(b, `,"budget":`...)
		b = r.Budget.appendJSON(b)
	}
	return append(b, '}')
}
