# syntax=docker/dockerfile:1
#
# Builds one function (or the migration command) into a small static image:
#
#   docker build --build-arg FUNCTION=usage -t ratebill/usage .
#
# FUNCTION is users, usage, billing, health or migrate (which also carries
# the invoice-closing job at /jobs/closeinvoices). Build from the
# repository root: each function module reaches ../../shared through its
# go.mod replace directive, so it builds without the workspace (GOWORK=off).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-alpine AS build
ARG FUNCTION
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
WORKDIR /src
COPY . .
# The health check binary (the runtime image has no shell, curl or wget) is
# one standard-library file, built without any module's dependencies.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    case "${FUNCTION:-}" in \
      users|usage|billing|health) dir="functions/${FUNCTION}"; pkg=./cmd ;; \
      migrate) dir=shared; pkg=./cmd/migrate ;; \
      *) echo "build argument FUNCTION must be users, usage, billing, health or migrate (got '${FUNCTION:-}')" >&2; exit 1 ;; \
    esac; \
    mkdir -p /out/jobs; \
    (cd "$dir" && go build -trimpath -ldflags="-s -w" -o /out/app "$pkg"); \
    if [ "$FUNCTION" = migrate ]; then \
      (cd shared && go build -trimpath -ldflags="-s -w" -o /out/jobs/closeinvoices ./cmd/closeinvoices); \
    fi; \
    (cd / && go build -trimpath -ldflags="-s -w" -o /out/healthcheck /src/shared/cmd/healthcheck/main.go)

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), tzdata;
# no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG FUNCTION
LABEL org.opencontainers.image.title="ratebill ${FUNCTION}" \
      org.opencontainers.image.source="https://github.com/ratebill/platform"
COPY --from=build /out/app /app
COPY --from=build /out/healthcheck /healthcheck
# The migrate image also carries the monthly closing job
# (/jobs/closeinvoices, terraform/invoices.tf); the others an empty /jobs.
COPY --from=build /out/jobs/ /jobs/
USER 65532:65532
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app"]
