// Package pricing prices metered units exactly. It does no I/O.
//
// A bill counts cost units: a request without a cost is 1 unit, so for
// today's callers units equal requests. Amounts are shopspring/decimal
// values, never float64: 1,000 units at 0.01 is exactly 10.00. An amount is rounded once, at the end, to the
// currency's minor unit (cents), half away from zero — the rounding of
// invoices — so a sub-cent unit price is billed exactly to the cent.
package pricing

import (
	"time"

	"github.com/shopspring/decimal"
)

// MinorUnits is the number of decimal places amounts are stated in.
const MinorUnits = 2

// Period is the span billed by GET /billing: the last 24 hours.
const Period = 24 * time.Hour

// Statement is the bill for one user over one period.
type Statement struct {
	Start, End time.Time
	Requests   int64           // metered requests (calls) admitted in [Start, End)
	Units      int64           // their cost in units
	UnitPrice  decimal.Decimal // price of one unit, as configured
	Amount     decimal.Decimal // Units × UnitPrice, rounded to MinorUnits
	Currency   string
}

// Price returns units × unitPrice rounded to the currency's minor unit.
func Price(units int64, unitPrice decimal.Decimal) decimal.Decimal {
	return unitPrice.Mul(decimal.NewFromInt(units)).Round(MinorUnits)
}

// NewStatement prices the units of requests over [start, end).
func NewStatement(start, end time.Time, requests, units int64, unitPrice decimal.Decimal, currency string) Statement {
	return Statement{
		Start:     start.UTC(),
		End:       end.UTC(),
		Requests:  requests,
		Units:     units,
		UnitPrice: unitPrice,
		Amount:    Price(units, unitPrice),
		Currency:  currency,
	}
}

// FormatAmount renders an amount with exactly MinorUnits decimals ("0.50").
func FormatAmount(d decimal.Decimal) string { return d.StringFixed(MinorUnits) }

// FormatUnitPrice renders a unit price with at least MinorUnits decimals
// and no fewer than it has ("0.01", "0.0015").
func FormatUnitPrice(d decimal.Decimal) string {
	places := -d.Exponent()
	if places < MinorUnits {
		places = MinorUnits
	}
	return d.StringFixed(places)
}
