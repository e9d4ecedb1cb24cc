package users

// Plans in the operator API: list and read them, create or replace a
// definition (PUT /admin/plans/{name}) and put a user on one (PUT
// /admin/users/{id}/plan). Every write is audited in its transaction and
// publishes the versions of the users it changes, so cached keys see the
// new limits on their next call (package postgres: PutPlan,
// AssignPlanAs).

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
)

// planStore is the storage of the plan endpoints; *postgres.Store.
type planStore interface {
	Plans(ctx context.Context) ([]shared.StoredPlan, error)
	Plan(ctx context.Context, name string) (shared.StoredPlan, error)
	PutPlan(ctx context.Context, actor postgres.Actor, p pricing.Plan) (bool, []postgres.UserVersion, error)
	AssignPlanAs(ctx context.Context, actor postgres.Actor, a shared.PlanAssignment) (int64, error)
	UserPlan(ctx context.Context, id int64) (string, *time.Time, error)
}

// VersionsPublisher publishes many users' versions at once (the
// limiter's PublishVersions, pipelined).
type VersionsPublisher interface {
	PublishVersions(ctx context.Context, versions map[int64]int64) error
}

type adminPlans struct {
	*admin
	plans     planStore
	many      VersionsPublisher // nil: none
	defaultOf pricing.Plan      // the default plan as the configuration defines it
	now       func() time.Time
}

// planObject is the operator API's plan: the definition (pricing.Plan's
// JSON, the format of docs/plans-and-invoices.md) with from_config and
// updated_at.
type planObject struct {
	pricing.Plan
	FromConfig bool      `json:"from_config"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// userPlan is the plan a user is on (GET /admin/users/{id}) and the
// answer of PUT /admin/users/{id}/plan.
type userPlan struct {
	UserID        int64      `json:"user_id"`
	Plan          string     `json:"plan"`
	EffectiveFrom *time.Time `json:"effective_from"`
}

var errNoPlan = shared.Errorf(shared.ENotFound, "no such plan")

func (a *adminPlans) object(sp shared.StoredPlan) planObject {
	if sp.FromConfig {
		p := a.defaultOf
		p.Name = sp.Name
		return planObject{Plan: p, FromConfig: true, UpdatedAt: sp.UpdatedAt}
	}
	if sp.Plan.Limits == nil {
		sp.Plan.Limits = []pricing.Limit{}
	}
	return planObject{Plan: sp.Plan, UpdatedAt: sp.UpdatedAt}
}

func (a *adminPlans) list(w http.ResponseWriter, r *http.Request) {
	plans, err := a.plans.Plans(r.Context())
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	out := page[planObject]{Items: []planObject{}}
	for _, sp := range plans {
		out.Items = append(out.Items, a.object(sp))
	}
	httpapi.JSON(w, http.StatusOK, out)
}

func (a *adminPlans) get(w http.ResponseWriter, r *http.Request) {
	sp, err := a.plans.Plan(r.Context(), r.PathValue("name"))
	if err != nil {
		httpapi.Error(w, r, notFound(err, errNoPlan))
		return
	}
	httpapi.JSON(w, http.StatusOK, a.object(sp))
}

// planInvalid turns Validate's "field: detail" into a 422 naming the
// field.
func planInvalid(err error) error {
	field, detail, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		field, detail = "plan", err.Error()
	}
	return &shared.Error{Code: shared.EInvalid, Message: "invalid plan: " + err.Error(),
		Fields: []shared.FieldError{{Field: field, Detail: detail}}}
}

// put creates (201) or replaces (200) the plan named by the path. The
// body is the plan's definition; its name may be left out, and must
// otherwise be the path's.
func (a *adminPlans) put(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var p pricing.Plan
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &p); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		httpapi.Error(w, r, invalid("name", "must be the plan's name in the path, or left out"))
		return
	}
	if err := p.Validate(); err != nil {
		httpapi.Error(w, r, planInvalid(err))
		return
	}
	// One currency per deployment: an invoice adds up the plans of a
	// month, and the default plan is in BILLING_CURRENCY.
	if p.Currency != a.defaultOf.Currency {
		httpapi.Error(w, r, invalid("currency", "must be "+a.defaultOf.Currency+", the deployment's BILLING_CURRENCY"))
		return
	}
	created, versions, err := a.plans.PutPlan(r.Context(), a.actor(r), p)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if len(versions) > 0 && a.many != nil {
		m := make(map[int64]int64, len(versions))
		for _, v := range versions {
			m[v.UserID] = v.Version
		}
		if err := a.many.PublishVersions(r.Context(), m); err != nil {
			httpapi.Logger(r.Context()).WarnContext(r.Context(), "publishing plan users' versions", "plan", p.Name,
				"users", len(m), "error", err.Error())
		}
	}
	sp, err := a.plans.Plan(r.Context(), p.Name)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpapi.JSON(w, status, a.object(sp))
}

type assignRequest struct {
	Plan      *string `json:"plan"`
	Effective *string `json:"effective"`
}

// assign puts user {id} on a plan from effective (default now), truncated
// to the minute; refused (409) in a month whose invoice is closed.
func (a *adminPlans) assign(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpapi.Error(w, r, errNoUser)
		return
	}
	var req assignRequest
	if err := httpapi.DecodeJSON(w, r, a.maxBody, &req); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if req.Plan == nil || *req.Plan == "" {
		httpapi.Error(w, r, invalid("plan", "is required: the name of a plan"))
		return
	}
	at := a.now()
	if req.Effective != nil {
		t, err := time.Parse(time.RFC3339, *req.Effective)
		if err != nil {
			httpapi.Error(w, r, invalid("effective", "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"))
			return
		}
		at = t
	}
	v, err := a.plans.AssignPlanAs(r.Context(), a.actor(r), shared.PlanAssignment{UserID: id, Plan: *req.Plan, EffectiveFrom: at})
	if err != nil {
		httpapi.Error(w, r, err) // ENotFound names the user or the plan
		return
	}
	a.publish(r, id, v)
	from := at.UTC().Truncate(time.Minute)
	httpapi.JSON(w, http.StatusOK, userPlan{UserID: id, Plan: *req.Plan, EffectiveFrom: &from})
}
