#!/usr/bin/env bash
# Refreshes uPlot, the chart library /dashboard and /console draw with
# (shared/webui/uplot/, embedded with go:embed), from the npm registry's
# uplot package at the pinned version. Only the files the pages need are
# kept: the minified browser build, its stylesheet and the license.
#
#   scripts/update-uplot.sh                      # the pinned version
#   UPLOT_VERSION=1.6.33 scripts/update-uplot.sh # to move the pin,
#                                                # then edit the default below
set -euo pipefail

version=${UPLOT_VERSION:-1.6.32}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=shared/webui/uplot

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uplot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null)
tar -xzf "$tmp/uplot-$version.tgz" -C "$tmp"
got=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")
if [ "$got" != "$version" ]; then
	echo "update-uplot: npm gave uplot $got, want $version" >&2
	exit 1
fi
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$dest/"
echo "$version" >"$dest/VERSION"
(cd "$dest" && sha256sum uPlot.iife.min.js uPlot.min.css LICENSE >SHA256SUMS)
echo "update-uplot: $dest now holds uplot $version"
