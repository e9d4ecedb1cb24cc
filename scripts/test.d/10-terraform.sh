#!/usr/bin/env bash
# Prepares the offline Terraform checks of verify/cloud (terraform fmt,
# init, validate and test against the real hashicorp/google provider).
#
# The public Terraform registry cannot be reached from these machines, but the
# provider is a Go module: it is built once from the Go module proxy and laid
# out as a filesystem mirror, and a CLI configuration file points Terraform at
# it (verify/cloud always uses that file, whatever TF_CLI_CONFIG_FILE says). Everything lives outside the repository, under
#   ${RATEBILL_TF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ratebill/terraform}
# which verify/cloud computes the same way. Idempotent: a second run only
# checks the stamp and prints what it found.
set -euo pipefail

log() { printf '10-terraform: %s\n' "$*"; }

# The commit of hashicorp/terraform-provider-google that the module proxy
# serves under this pseudo-version belongs to the 8.0 release line
# (CHANGELOG.md: "8.0.0 (August 26, 2026)"); terraform/versions.tf accepts
# "~> 8.0", so the mirror offers it as 8.0.0.
provider_module=github.com/hashicorp/terraform-provider-google
provider_pseudo=v1.20.1-0.20260828184646-f3721fb45fa3
provider_version=8.0.0

cache=${RATEBILL_TF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ratebill/terraform}
platform="$(go env GOOS)_$(go env GOARCH)"
mirror="$cache/mirror"
dir="$mirror/registry.terraform.io/hashicorp/google/$provider_version/$platform"
bin="$dir/terraform-provider-google_v$provider_version"
stamp="$cache/provider.stamp"
want_stamp="$provider_module@$provider_pseudo $platform"

if ! command -v terraform >/dev/null 2>&1; then
	if [ -n "${CI:-}" ]; then
		log "terraform is not on PATH (expected /usr/local/bin/terraform); the Terraform checks cannot run" >&2
		exit 1
	fi
	log "warning: terraform is not on PATH; verify/cloud will skip its Terraform tests (CI unset)"
else
	log "using $(command -v terraform) ($(terraform version 2>/dev/null | head -n1))"
fi

if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ]; then
	log "provider hashicorp/google $provider_version already built: $bin"
else
	log "building $provider_module@$provider_pseudo from the Go module proxy (about 3 minutes the first time)"
	mkdir -p "$cache/gobin" "$dir"
	GOWORK=off GOFLAGS=-buildvcs=false GOBIN="$cache/gobin" go install "$provider_module@$provider_pseudo"
	chmod 0755 "$cache/gobin/terraform-provider-google"
	mv -f "$cache/gobin/terraform-provider-google" "$bin"
	printf '%s\n' "$want_stamp" >"$stamp"
	log "provider installed in the filesystem mirror: $bin"
fi

# The CLI configuration: hashicorp/google comes from the mirror only; no
# other provider is needed (and none could be downloaded here).
rc="$cache/terraformrc"
cat >"$rc.tmp" <<EOF
# Written by scripts/test.d/10-terraform.sh; used by verify/cloud as TF_CLI_CONFIG_FILE.
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/google"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/google"]
  }
}
EOF
mv -f "$rc.tmp" "$rc"
log "TF_CLI_CONFIG_FILE for verify/cloud: $rc"
