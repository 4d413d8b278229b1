#!/usr/bin/env bash
# Fetch the viewers the OpenSeadragon and Mirador examples load, from npm, into
# examples/widget/node_modules/ (ignored by git). Only the packages' own files are unpacked
# (`npm pack`, no dependency tree): both ship self-contained browser builds.
#
# Usage: examples/widget/install.sh
set -euo pipefail
cd "$(dirname "$0")"
OPENSEADRAGON=openseadragon@6.1.1
MIRADOR=mirador@4.0.0        # dist/mirador.min.js is a UMD bundle with React inside

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "$OPENSEADRAGON" "$MIRADOR" > /dev/null
for tarball in "$tmp"/*.tgz; do
  name="$(basename "$tarball" | sed -E 's/-[0-9][^-]*\.tgz$//')"
  rm -rf "node_modules/$name"
  mkdir -p "node_modules/$name"
  tar -xzf "$tarball" -C "node_modules/$name" --strip-components=1
done
ls node_modules/openseadragon/build/openseadragon/openseadragon.min.js node_modules/mirador/dist/mirador.min.js
