#!/usr/bin/env bash
# Prepares the real-browser test of /docs (tools/e2e TestDocsInBrowser):
# installs Debian's chromium, and a font so the screenshot shows text, when
# missing. Idempotent: when chromium is there it only prints what it found.
set -euo pipefail

log() { printf '30-chromium: %s\n' "$*"; }
# shellcheck source=../lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/apt.sh"

find_chromium() {
	local c
	for c in chromium chromium-browser google-chrome; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return
		fi
	done
}

bin=$(find_chromium || true)
if [ -z "$bin" ] || [ ! -e /usr/share/fonts/truetype/liberation ]; then
	log "installing chromium and fonts-liberation"
	if ! apt_install chromium fonts-liberation; then
		[ -n "${CI:-}" ] && exit 1
		exit 0
	fi
	bin=$(find_chromium || true)
	if [ -z "$bin" ]; then
		log "chromium installed, but no chromium binary was found" >&2
		exit 1
	fi
fi
# The Debian launcher is a shell script; the version comes from the binary.
log "using $bin ($("$bin" --version 2>/dev/null | tail -n1))"
