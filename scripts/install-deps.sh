#!/usr/bin/env bash
# Installs the server packages that `make run` and `make test` start
# privately: redis-server, and PostgreSQL when no server binaries exist at
# all. Idempotent and quiet when everything is there. As root on Debian or
# Ubuntu it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

have_postgres() {
	if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
		return 0
	fi
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/initdb && -x $d/postgres ]] && return 0
	done
	return 1
}

have_redis() {
	command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]]
}

need=()
have_postgres || need+=(postgresql)
have_redis || need+=(redis-server)

if ((${#need[@]} == 0)); then
	log "PostgreSQL and redis-server already installed"
	exit 0
fi

log "installing ${need[*]}"
apt_install "${need[@]}" || exit 1
have_postgres || { log "postgresql installed but initdb/postgres still not found"; exit 1; }
have_redis || { log "redis-server installed but still not found"; exit 1; }
log "installed ${need[*]}"
