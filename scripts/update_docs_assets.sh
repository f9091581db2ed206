#!/usr/bin/env bash
# Refresh the Swagger UI and ReDoc files vendored in src/trellis/openapi/assets/.
#
# The API docs pages must work with no network, so the browser code ships inside the package.
# This script is how the files were obtained and how to update them:
#
#   1. `npm pack` downloads the pinned release tarballs from the npm registry (npm checks them
#      against the registry's integrity hash; the script checks again and records it);
#   2. only the files the pages load are copied, with the licences that cover them;
#   3. VERSIONS.txt records the versions, the tarballs' integrity and each file's sha256
#      (tests/openapi/test_docs_pages.py checks the files against it).
#
# Usage:
#   scripts/update_docs_assets.sh                      # the pinned versions below
#   SWAGGER_UI_VERSION=5.x.y REDOC_VERSION=2.x.y scripts/update_docs_assets.sh
#
# To upgrade: look up the newest releases (`npm view swagger-ui-dist@5 version`,
# `npm view redoc@2 version`), change the pins below, run the script, run the test suite, and
# open /docs and /redoc in a browser with the developer console on: no CSP violation and no
# request leaving the origin. Needs npm (with node), tar and sha256sum.
set -euo pipefail

SWAGGER_UI_VERSION="${SWAGGER_UI_VERSION:-5.35.0}"
REDOC_VERSION="${REDOC_VERSION:-2.5.4}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/src/trellis/openapi/assets"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

integrity_of() {  # the npm-style sha512 integrity of a file
    node -e 'const c = require("crypto"), fs = require("fs");
        console.log("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"));' "$1"
}

fetch() {  # fetch <package> <version>: unpack the tarball into $tmp/<package>, print integrity
    local package="$1" version="$2" tarball expected actual
    tarball="$(cd "$tmp" && npm pack --silent "$package@$version" 2>/dev/null | tail -n 1)"
    expected="$(npm view "$package@$version" dist.integrity 2>/dev/null)"
    actual="$(integrity_of "$tmp/$tarball")"
    if [[ "$expected" != "$actual" ]]; then
        echo "integrity mismatch for $package@$version: registry $expected, download $actual" >&2
        exit 1
    fi
    mkdir -p "$tmp/$package"
    tar -xzf "$tmp/$tarball" -C "$tmp/$package"
    echo "$actual"
}

swagger_integrity="$(fetch swagger-ui-dist "$SWAGGER_UI_VERSION")"
redoc_integrity="$(fetch redoc "$REDOC_VERSION")"

swagger="$tmp/swagger-ui-dist/package"
redoc="$tmp/redoc/package"

rm -rf "$dest/swagger-ui" "$dest/redoc"
mkdir -p "$dest/swagger-ui" "$dest/redoc"

# Swagger UI: the bundle (with the BaseLayout, so no standalone preset), its stylesheet, the
# OAuth2 redirect script, an icon, and the licences (Apache-2.0 needs LICENSE and NOTICE; the
# bundle's third-party notices are in its .LICENSE.txt).
cp "$swagger/swagger-ui-bundle.js" "$swagger/swagger-ui-bundle.js.LICENSE.txt" \
    "$swagger/swagger-ui.css" "$swagger/oauth2-redirect.js" "$swagger/favicon-32x32.png" \
    "$swagger/LICENSE" "$swagger/NOTICE" "$dest/swagger-ui/"

# ReDoc: the standalone bundle (React and the search worker included), its licence (MIT) and
# the third-party notices of the bundle and of its inlined worker.
cp "$redoc/bundles/redoc.standalone.js" "$redoc/bundles/redoc.standalone.js.LICENSE.txt" \
    "$redoc"/bundles/*.worker.js.LICENSE.txt "$redoc/LICENSE" "$dest/redoc/"

# The pages must not reach the network: fail if the stylesheet pulls anything from elsewhere.
if grep -Eq '@import|url\((["'"'"']?)https?:' "$dest/swagger-ui/swagger-ui.css"; then
    echo "swagger-ui.css loads a remote resource; check the pages before shipping" >&2
    exit 1
fi

{
    echo "# Vendored by scripts/update_docs_assets.sh; do not edit these files by hand."
    echo "# Refresh: scripts/update_docs_assets.sh (pins and instructions are in the script)."
    echo
    echo "swagger-ui-dist $SWAGGER_UI_VERSION Apache-2.0 $swagger_integrity"
    echo "redoc $REDOC_VERSION MIT $redoc_integrity"
    echo
    echo "# sha256 of each vendored file (check with: cd src/trellis/openapi/assets && sha256sum -c VERSIONS.txt)"
    (cd "$dest" && find swagger-ui redoc -type f | LC_ALL=C sort | xargs sha256sum)
} > "$dest/VERSIONS.txt"

echo "vendored swagger-ui-dist $SWAGGER_UI_VERSION and redoc $REDOC_VERSION into $dest"
du -ch "$dest"/swagger-ui/* "$dest"/redoc/* | tail -n 1
