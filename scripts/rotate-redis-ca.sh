#!/usr/bin/env bash
# Distributes Memorystore's server CA certificates after a change (a CA
# rotation, or a new instance) to the functions, without Terraform:
#
#   scripts/rotate-redis-ca.sh PROJECT REGION APP ENV
#
# 1. reads the instance's serverCaCerts (every CA clients must trust; during
#    a rotation both the current and the next one);
# 2. if they differ from the latest version of the <app>-<env>-redis-ca-cert
#    secret, adds them as a new version (REDIS_CA_CERT; shared/redistls
#    trusts every certificate of the bundle);
# 3. starts a new revision of each function service, so every instance
#    reads the new bundle (Cloud Run resolves "latest" when an instance
#    starts). The revision suffix changes only template.revision, which
#    Terraform ignores.
#
# Run it when Google announces a CA rotation, before the new CA signs the
# server certificate, and again after the old CA is removed. A later
# terraform apply writes the same bundle (secrets.tf) and changes nothing.
# DRY_RUN=1 prints the commands that would change something.
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 PROJECT REGION APP ENV   (e.g. my-ratebill-prod us-central1 ratebill prod)" >&2
	exit 2
fi
project=$1 region=$2 app=$3 env=$4
prefix="$app-$env"
secret="$prefix-redis-ca-cert"
functions=(users usage billing health)

run() {
	if [ -n "${DRY_RUN:-}" ]; then
		printf 'DRY_RUN: %s\n' "$*"
	else
		"$@"
	fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every CA, in the order the API lists them, as Terraform joins them.
gcloud redis instances describe "$prefix-redis" --project "$project" --region "$region" \
	--format='value[delimiter="\n"](serverCaCerts[].cert)' >"$work/new.pem"
if ! grep -q 'BEGIN CERTIFICATE' "$work/new.pem"; then
	echo "rotate-redis-ca: instance $prefix-redis lists no server CA certificate (is transit encryption on?)" >&2
	exit 1
fi
gcloud secrets versions access latest --secret "$secret" --project "$project" >"$work/old.pem" 2>/dev/null || : >"$work/old.pem"

# Compare certificate by certificate, ignoring whitespace differences.
norm() { tr -d ' \r\n' <"$1"; }
if [ "$(norm "$work/new.pem")" = "$(norm "$work/old.pem")" ]; then
	echo "rotate-redis-ca: $secret already holds the instance's $(grep -c 'BEGIN CERTIFICATE' "$work/new.pem") CA certificate(s); nothing to do"
	exit 0
fi

echo "rotate-redis-ca: adding a version of $secret with $(grep -c 'BEGIN CERTIFICATE' "$work/new.pem") CA certificate(s)"
run gcloud secrets versions add "$secret" --project "$project" --data-file "$work/new.pem"

suffix="ca-$(date -u +%Y%m%d%H%M%S)"
for fn in "${functions[@]}"; do
	echo "rotate-redis-ca: new revision of $prefix-$fn ($suffix)"
	run gcloud run services update "$prefix-$fn" --project "$project" --region "$region" --quiet \
		--revision-suffix "$suffix"
done
echo "rotate-redis-ca: done; check /health through the load balancer"
