# syntax=docker/dockerfile:1
#
# The image cloudbuild.yaml runs `make test` in: everything the tests start
# or call, installed once here instead of by scripts/test.sh at test time.
#
#   docker build -f ci/test-runner.Dockerfile -t ratebill-test-runner scripts
#
# The build context is scripts/ (only 10-terraform.sh is used): the Terraform
# provider mirror is built into the image, so the from-source provider build
# never runs beside the tests or the image builds.
#
# verify/cloud (TestCloudBuildTestStepHasItsTools) checks that every tool
# make test needs is provided here.

ARG GO_VERSION=1.26.8
ARG TERRAFORM_VERSION=1.11.4

# Terraform cannot be built from its Go module (local replace directives):
# the official binary.
FROM docker.io/hashicorp/terraform:${TERRAFORM_VERSION} AS terraform

# Debian 12 (bookworm): go, gofmt, make, git, bash; util-linux (unshare).
FROM docker.io/library/golang:${GO_VERSION}-bookworm
# Server packages the harness starts (PostgreSQL 15 is Debian 12's only
# version), nginx for nginx -t and the gateway tests, Chromium for the
# browser test. install-deps.sh and test.d/*.sh find them and install
# nothing.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql redis-server nginx-light chromium fonts-liberation util-linux ca-certificates; \
    rm -rf /var/lib/apt/lists/*
COPY --from=terraform /bin/terraform /usr/local/bin/terraform
# The hashicorp/google provider, built from the Go module proxy into the
# filesystem mirror verify/cloud uses (~/.cache/ratebill/terraform).
COPY test.d/10-terraform.sh /opt/ratebill/10-terraform.sh
RUN CI=true bash /opt/ratebill/10-terraform.sh && go clean -cache -modcache
