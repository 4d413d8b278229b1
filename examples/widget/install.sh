#!/usr/bin/env bash
# Fetch the viewers the OpenSeadragon, Mirador and Universal Viewer examples load, from npm, into
# examples/widget/node_modules/ (ignored by git). Only the packages' own files are unpacked
# (`npm pack`, no dependency tree): all three ship self-contained browser builds.
#
# Usage: examples/widget/install.sh
set -euo pipefail
cd "$(dirname "$0")"
OPENSEADRAGON=openseadragon@6.1.1      # BSD-3-Clause
MIRADOR=mirador@4.0.0                  # Apache-2.0; dist/mirador.min.js is a UMD bundle with React inside
UNIVERSALVIEWER=universalviewer@4.4.0  # MIT; dist/umd/UV.js loads its dist/umd/*.js chunks beside it

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "$OPENSEADRAGON" "$MIRADOR" "$UNIVERSALVIEWER" > /dev/null
for tarball in "$tmp"/*.tgz; do
  name="$(basename "$tarball" | sed -E 's/-[0-9][^-]*\.tgz$//')"
  rm -rf "node_modules/$name"
  mkdir -p "node_modules/$name"
  tar -xzf "$tarball" -C "node_modules/$name" --strip-components=1
done
ls node_modules/openseadragon/build/openseadragon/openseadragon.min.js node_modules/mirador/dist/mirador.min.js \
  node_modules/universalviewer/dist/umd/UV.js
