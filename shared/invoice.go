package shared

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared/pricing"
)

// Invoice statuses.
const (
	InvoiceOpen   = "open"   // computed from the rollups on every read
	InvoiceClosed = "closed" // stored once by the closing job, final
)

// PlanSegment is the part of a billing period during which one plan was
// in effect for a user, and what was recorded in it.
type PlanSegment struct {
	Plan     pricing.Plan `json:"plan"`
	From     time.Time    `json:"from"`
	To       time.Time    `json:"to"` // exclusive
	Requests int64        `json:"requests"`
	Units    int64        `json:"units"`
}

// Invoice is a user's invoice for one period ("2026-11"), open or
// closed. RecordedUnits are the period's own units; CarriedUnits are
// units of the previous period recorded after that period's invoice had
// closed (late events), billed here. Units = RecordedUnits + CarriedUnits.
type Invoice struct {
	UserID        int64
	Period        string
	Status        string
	Currency      string
	Segments      []PlanSegment
	Lines         []pricing.Line
	Requests      int64
	RecordedUnits int64
	CarriedUnits  int64
	Subtotal      decimal.Decimal
	Total         decimal.Decimal
	ComputedAt    time.Time
}

// Units is everything this invoice bills.
func (i Invoice) Units() int64 { return i.RecordedUnits + i.CarriedUnits }

// PlanAssignment puts a user on a plan from a whole minute on.
type PlanAssignment struct {
	UserID        int64
	Plan          string
	EffectiveFrom time.Time
}

// StoredPlan is a row of the plans table. A FromConfig plan (the
// default) takes its limit and price from the deployment's
// configuration; its Plan is empty.
type StoredPlan struct {
	Name       string
	FromConfig bool
	Plan       pricing.Plan
	UpdatedAt  time.Time
}

// Customer names the user an invoice belongs to, for the operator's
// export.
type Customer struct {
	ID        int64
	Username  string
	Email     string
	CreatedAt time.Time
}
