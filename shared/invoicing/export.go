package invoicing

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/pricing"
)

// Document is the wire form of an invoice: the body of
// GET /billing?period=YYYY-MM and an item of the operator's JSON export.
// Money is sent as decimal strings with two decimals.
type Document struct {
	UserID        int64          `json:"user_id"`
	Period        string         `json:"period"`
	Status        string         `json:"status"` // open or closed
	PeriodStart   time.Time      `json:"period_start"`
	PeriodEnd     time.Time      `json:"period_end"`
	Currency      string         `json:"currency"`
	Plan          string         `json:"plan"` // the plan in effect at the end of the period (or now)
	Plans         []Segment      `json:"plans"`
	Requests      int64          `json:"requests"`
	Units         int64          `json:"units"`          // recorded_units + carried_units
	RecordedUnits int64          `json:"recorded_units"` // recorded in this period
	CarriedUnits  int64          `json:"carried_units"`  // late units of the previous period
	Lines         []pricing.Line `json:"lines"`
	Subtotal      string         `json:"subtotal"`
	Total         string         `json:"total"`
	ComputedAt    time.Time      `json:"computed_at"`
}

// Segment is the part of the period one plan was in effect.
type Segment struct {
	Plan     string    `json:"plan"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Requests int64     `json:"requests"`
	Units    int64     `json:"units"`
}

// NewDocument is the wire form of inv.
func NewDocument(inv shared.Invoice) Document {
	p, _ := ParsePeriod("period", inv.Period)
	out := Document{UserID: inv.UserID, Period: inv.Period, Status: inv.Status, PeriodStart: p.Start(), PeriodEnd: p.End(),
		Currency: inv.Currency, Requests: inv.Requests, Units: inv.Units(), RecordedUnits: inv.RecordedUnits, CarriedUnits: inv.CarriedUnits,
		Lines: inv.Lines, Subtotal: pricing.FormatAmount(inv.Subtotal), Total: pricing.FormatAmount(inv.Total), ComputedAt: inv.ComputedAt,
		Plans: []Segment{}}
	for _, sg := range inv.Segments {
		out.Plans = append(out.Plans, Segment{Plan: sg.Plan.Name, From: sg.From, To: sg.To, Requests: sg.Requests, Units: sg.Units})
		out.Plan = sg.Plan.Name
	}
	if out.Lines == nil {
		out.Lines = []pricing.Line{}
	}
	return out
}

// ExportItem is one invoice of the JSON export, with its customer.
type ExportItem struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Document
}

// Export formats.
const (
	CSV  = "csv"
	JSON = "json"
)

// CSVHeader is the first row of the CSV export: one row per line item,
// the invoice's fields repeated on each.
var CSVHeader = []string{"period", "user_id", "username", "email", "status", "currency", "line", "kind", "plan", "description",
	"units", "quantity", "unit_price", "amount", "invoice_subtotal", "invoice_total"}

// Export writes the closed invoices of period, for every customer, by
// user id, as CSV (one row per line item) or JSON ({"items": [...],
// "next_cursor": null}), streaming in pages, and returns how many. Only
// closed invoices are exported: a period that is not over is refused
// (EConflict); one that is over but not closed yet exports what the
// closing job has stored (nothing before it runs).
func (s *Service) Export(ctx context.Context, p Period, format string, w io.Writer) (int, error) {
	if format != CSV && format != JSON {
		return 0, &shared.Error{Code: shared.EInvalid, Message: "format must be csv or json",
			Fields: []shared.FieldError{{Field: "format", Detail: "must be csv or json"}}}
	}
	if !s.now().After(p.End()) {
		return 0, shared.Errorf(shared.EConflict, "period %s is not over; its invoices are open", p)
	}
	var cw *csv.Writer
	if format == CSV {
		cw = csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, err
		}
	} else if _, err := io.WriteString(w, `{"items":[`); err != nil {
		return 0, err
	}
	n := 0
	var after int64
	for {
		invs, custs, err := s.Store.PeriodInvoices(ctx, p.String(), after, 500)
		if err != nil {
			return n, err
		}
		if len(invs) == 0 {
			break
		}
		for i, inv := range invs {
			doc := NewDocument(inv)
			if cw != nil {
				for k, l := range inv.Lines {
					rec := []string{inv.Period, strconv.FormatInt(inv.UserID, 10), cell(custs[i].Username), cell(custs[i].Email), inv.Status,
						inv.Currency, strconv.Itoa(k + 1), l.Kind, cell(l.Plan), cell(l.Description), strconv.FormatInt(l.Units, 10),
						l.Quantity.String(), pricing.FormatUnitPrice(l.UnitPrice), pricing.FormatAmount(l.Amount), doc.Subtotal, doc.Total}
					if err := cw.Write(rec); err != nil {
						return n, err
					}
				}
			} else {
				b, err := json.Marshal(ExportItem{Username: custs[i].Username, Email: custs[i].Email, Document: doc})
				if err != nil {
					return n, fmt.Errorf("encoding an invoice: %w", err)
				}
				if n > 0 {
					b = append([]byte{','}, b...)
				}
				if _, err := w.Write(b); err != nil {
					return n, err
				}
			}
			n++
		}
		after = invs[len(invs)-1].UserID
	}
	if cw != nil {
		cw.Flush()
		return n, cw.Error()
	}
	_, err := io.WriteString(w, "],\"next_cursor\":null}\n")
	return n, err
}

// cell defuses a spreadsheet formula (OWASP CSV injection): a value that
// starts with = + - @ or a tab or carriage return gets a leading quote.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
