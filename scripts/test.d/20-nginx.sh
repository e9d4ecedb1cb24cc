#!/usr/bin/env bash
# Prepares the gateway checks of verify/local: `nginx -t` on the compose and
# Kubernetes gateway configuration and the end-to-end tests that run a real
# nginx in front of the function processes. Installs Debian's nginx-light
# when no nginx is on the machine. Idempotent: when nginx is there it only
# prints what it found.
set -euo pipefail

log() { printf '20-nginx: %s\n' "$*"; }
# shellcheck source=../lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/apt.sh"

# find_nginx prints the path of a working nginx binary, or nothing.
find_nginx() {
	local p
	for p in "$(command -v nginx 2>/dev/null)" /usr/sbin/nginx; do
		if [ -n "$p" ] && "$p" -v >/dev/null 2>&1; then
			echo "$p"
			return
		fi
	done
}

nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
	log "installing nginx-light"
	if ! apt_install nginx-light; then
		[ -n "${CI:-}" ] && exit 1
		exit 0
	fi
	nginx_bin=$(find_nginx)
	# The package's install script may start a system nginx on port 80; the
	# tests start their own, so stop the one the install started.
	if [ -n "$nginx_bin" ] && [ -s /run/nginx.pid ]; then
		"$nginx_bin" -s quit 2>/dev/null || true
	fi
	if [ -z "$nginx_bin" ]; then
		log "nginx-light installed, but no nginx binary was found" >&2
		exit 1
	fi
fi
log "using $nginx_bin ($("$nginx_bin" -v 2>&1))"

# nginx -t runs in a private mount namespace (unshare, util-linux).
if ! command -v unshare >/dev/null 2>&1; then
	log "unshare (util-linux) is missing; the nginx -t checks cannot run" >&2
	[ -n "${CI:-}" ] && exit 1
fi
