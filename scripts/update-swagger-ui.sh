#!/usr/bin/env bash
# Refreshes the Swagger UI assets that /docs serves from inside the binary
# (shared/openapi/swagger-ui/, embedded with go:embed) from the npm
# registry's swagger-ui-dist package at the pinned version. Only the files
# the page needs are kept: the bundle, the stylesheet and the license.
#
#   scripts/update-swagger-ui.sh            # the pinned version
#   SWAGGER_UI_VERSION=5.36.0 scripts/update-swagger-ui.sh   # to move the pin,
#                                           # then edit the default below
set -euo pipefail

version=${SWAGGER_UI_VERSION:-5.35.0}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=shared/openapi/swagger-ui

tmp=$(mktemp -d "${TMPDIR:-/tmp}/swagger-ui.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$version" >/dev/null)
tar -xzf "$tmp/swagger-ui-dist-$version.tgz" -C "$tmp"
got=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")
if [ "$got" != "$version" ]; then
	echo "update-swagger-ui: npm gave swagger-ui-dist $got, want $version" >&2
	exit 1
fi
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do
	cp "$tmp/package/$f" "$dest/$f"
done
echo "$version" >"$dest/VERSION"
(cd "$dest" && sha256sum swagger-ui-bundle.js swagger-ui.css LICENSE >SHA256SUMS)
echo "update-swagger-ui: $dest now holds swagger-ui-dist $version"
