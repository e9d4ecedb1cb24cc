package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/ratebill/platform/shared"
)

// DecodeJSON reads r's body into dst. It answers with application errors:
// 415 unless the body is application/json, 413 past maxBytes, 400 for
// malformed JSON or trailing data, 422 for unknown fields or wrong types.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, dst any) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return shared.Errorf(shared.EUnsupportedMedia, "send the body as application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return shared.Errorf(shared.EUnsupportedMedia, "only charset=utf-8 is accepted")
	}
	if r.ContentLength > maxBytes {
		return shared.Errorf(shared.ETooLarge, "request body is larger than %d bytes", maxBytes)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		if err == nil {
			return shared.Errorf(shared.EMalformed, "body must hold exactly one JSON object")
		}
		return decodeError(err, maxBytes)
	}
	return nil
}

func decodeError(err error, maxBytes int64) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return shared.Errorf(shared.ETooLarge, "request body is larger than %d bytes", maxBytes)
	case errors.Is(err, io.EOF):
		return shared.Errorf(shared.EMalformed, "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return shared.Errorf(shared.EMalformed, "request body ends in the middle of the JSON")
	case errors.As(err, &syntax):
		return shared.Errorf(shared.EMalformed, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return &shared.Error{Code: shared.EInvalid, Message: fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type),
				Fields: []shared.FieldError{{Field: typ.Field, Detail: "must be a " + typ.Type.String()}}}
		}
		return shared.Errorf(shared.EMalformed, "body must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return &shared.Error{Code: shared.EInvalid, Message: "unknown field " + name,
			Fields: []shared.FieldError{{Field: strings.Trim(name, `"`), Detail: "unknown field"}}}
	}
	return shared.Errorf(shared.EMalformed, "malformed JSON body")
}
