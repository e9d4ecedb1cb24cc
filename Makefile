# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
MODULES := $(shell sed -n 's/^\t\.\/\(.*\)$$/\1/p' go.work)

.PHONY: run run-separate close-invoices test lint fmt vet staticcheck bench loadtest build cli clean

## run: the whole platform on one machine at http://127.0.0.1:$${PORT:-8080}
run:
	$(GO) run ./tools/cmd/platform

## run-separate: each function its own process behind the gateway (as on Cloud Run)
run-separate:
	$(GO) run ./tools/cmd/platform -separate

## close-invoices: close a month's invoices (PERIOD=YYYY-MM, default last month; GRACE=0s to close a month just ended) on $$DATABASE_URL, e.g. the one `make run` logs
close-invoices:
	$(GO) run ./shared/cmd/closeinvoices $(if $(PERIOD),-period $(PERIOD)) $(if $(GRACE),-grace $(GRACE))

## test: every test against real Postgres and Redis started by the harness
test:
	bash scripts/test.sh

## lint: gofmt, go vet and staticcheck over every module
lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

staticcheck:
	@for m in $(MODULES); do (cd $$m && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...) || exit 1; done

## bench: go benchmarks of the hot path and the load tool against `make run` (see BENCHMARKS.md)
bench:
	bash scripts/bench.sh

## loadtest: the load tool against $${API_BASE:-http://127.0.0.1:8080} (LT_USERS, LT_REQUESTS, LT_CONCURRENCY, LT_ENDPOINT)
loadtest:
	$(GO) run ./tools/cmd/loadtest

## build: every function binary, each without the workspace (as deployed)
build:
	@mkdir -p bin
	@for f in users usage billing health; do (cd functions/$$f && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -o ../../bin/$$f ./cmd) || exit 1; done
	@cd shared && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/migrate ./cmd/migrate
	@cd shared && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/closeinvoices ./cmd/closeinvoices
	@$(MAKE) --no-print-directory cli

## cli: bin/ratebill, the operator's command line (module cli, built without the workspace)
cli:
	@mkdir -p bin
	@cd cli && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/ratebill ./cmd/ratebill

clean:
	rm -rf bin artifacts
