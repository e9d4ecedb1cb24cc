package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
)

// Actor types of the audit log.
const (
	ActorOperator = "operator" // an operator token; ActorID is its id
	ActorUser     = "user"     // a customer acting on their own keys; ActorID is the user id
	ActorSystem   = "system"   // the platform itself
)

// AuditEntry is one row of the audit log: who did what, to whom, from
// where, with the state before and after (any JSON-encodable value, or
// nil). It is written in the same transaction as the change it records.
type AuditEntry struct {
	ActorType  string
	ActorID    int64 // 0: none
	ActorName  string
	Action     string // e.g. "key.create", "user.suspend"
	UserID     int64  // the user acted on; 0: none
	Target     string // e.g. "key:42", "token:3"
	RemoteAddr string
	RequestID  string
	Before     any
	After      any
}

// insertAudit writes e inside tx.
func insertAudit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	before, err := auditJSON(e.Before)
	if err != nil {
		return err
	}
	after, err := auditJSON(e.After)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
INSERT INTO audit_log (actor_type, actor_id, actor_name, action, user_id, target, remote_addr, request_id, before, after)
VALUES ($1, NULLIF($2::bigint, 0), $3, $4, NULLIF($5::bigint, 0), $6, $7, $8, $9, $10)`,
		e.ActorType, e.ActorID, e.ActorName, e.Action, e.UserID, e.Target, e.RemoteAddr, e.RequestID, before, after)
	if err != nil {
		return mapError("writing audit log", err)
	}
	return nil
}

// auditJSON encodes v for a jsonb column; nil stays NULL.
func auditJSON(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}
