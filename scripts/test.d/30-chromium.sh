#!/usr/bin/env bash
# Prepares the real-browser test of /docs (tools/e2e TestDocsInBrowser):
# installs Debian's chromium, and a font so the screenshot shows text, when
# missing. Idempotent: when chromium is there it only prints what it found.
set -euo pipefail

log() { printf '30-chromium: %s\n' "$*"; }

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
	if [ "$(id -u)" -ne 0 ]; then
		log "chromium (or fonts-liberation) is missing and installing it needs root: run 'apt-get install chromium fonts-liberation' as root" >&2
		[ -n "${CI:-}" ] && exit 1
		exit 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	log "installing chromium and fonts-liberation with apt-get"
	if ! apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null 2>&1; then
		# A fresh machine may have no package lists yet.
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
	fi
	bin=$(find_chromium || true)
	if [ -z "$bin" ]; then
		log "chromium installed, but no chromium binary was found" >&2
		exit 1
	fi
fi
# The Debian launcher is a shell script; the version comes from the binary.
log "using $bin ($("$bin" --version 2>/dev/null | tail -n1))"
