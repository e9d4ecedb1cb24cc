// Package cli is ratebill, the operator's command line: it talks to the
// platform's operator API (/admin/… on the users function, behind the
// gateway) with an operator token, and prints human tables or, with
// --json, the API's own JSON.
//
//	ratebill users list [--search Q] [--limit N] [--cursor C] [--all]
//	ratebill users show USER_ID
//	ratebill users suspend USER_ID --reason TEXT
//	ratebill users reactivate USER_ID
//	ratebill users limit USER_ID --limit UNITS --window SECONDS
//	ratebill users limit USER_ID --clear
//	ratebill users plan USER_ID PLAN [--effective RFC3339]
//	ratebill plans list
//	ratebill plans show NAME
//	ratebill plans set NAME --file PLAN.json
//	ratebill keys issue USER_ID [--name NAME] [--expires-in DURATION]
//	ratebill keys revoke KEY_ID
//	ratebill tokens list
//	ratebill tokens create --name NAME --scope admin|viewer
//	ratebill tokens revoke TOKEN_ID
//	ratebill audit tail [--user USER_ID] [--action ACTION] [--limit N] [--follow]
//
// The API is found by --url (or RATEBILL_URL; default
// http://127.0.0.1:8080, the local gateway of `make run`) and the token
// comes from --token, --token-file or RATEBILL_TOKEN, in that order. The
// token is sent only in the Authorization header and is never printed.
//
// Exit codes: 0 success, 1 the API refused (its problem's status and
// detail are printed on one line of stderr), 2 a usage error (bad
// arguments or flags, no token; nothing was sent), 3 the API could not be
// reached (connection refused, DNS, --timeout).
//
// The binary is cmd/ratebill; Run is the whole program, so tests run the
// real commands in-process.
package cli
