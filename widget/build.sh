#!/usr/bin/env bash
# Build the served widget from widget/src/ by plain concatenation (no npm, no bundler):
#
#   plugin/bookidx/web/static/bookidx.js           defines <bookidx-search> and <bookidx-similar> (imports the next)
#   plugin/bookidx/web/static/bookidx-elements.js  the same classes, defining nothing
#
# Each source is an ES module that only imports siblings with one-line `import … from './x.js'`;
# those lines are dropped, `export` is kept only for index.js's public names, and the result is
# one self-contained ES module. The output depends on the sources alone (no dates, no paths), so
# tests/test_widget.py can check that the committed files equal a fresh build.
#
# Usage: widget/build.sh [OUTDIR]   (default: plugin/bookidx/web/static)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/src"
out="${1:-$here/../plugin/bookidx/web/static}"
# Dependency order: every module comes after the ones it imports.
modules=(i18n api dom styles grid base picker weight search similar index)

emit() { # emit FILE: one module with its sibling imports removed and internal exports unexported
  local file="$src/$1.js"
  if grep -nE "^import " "$file" | grep -vE "^[0-9]+:import \{[^}]*\} from '\./[a-z0-9-]+\.js';$" >&2; then
    echo "build.sh: $1.js: only one-line imports of sibling modules are supported" >&2
    exit 1
  fi
  printf '\n// ---- widget/src/%s.js ----\n' "$1"
  sed -E \
    -e "/^import \{[^}]*\} from '\.\/[a-z0-9-]+\.js';$/d" \
    -e "/^export \* from '\.\/[a-z0-9-]+\.js';$/d" \
    -e "s/^export (\{[^}]*\}) from '\.\/[a-z0-9-]+\.js';$/export \1;/" \
    -e "s/^export (class|function|async function|const|let) /\1 /" \
    "$file"
}

header() {
  printf '// %s: %s. Apache-2.0.\n' "$1" "$2"
  printf '// Built by widget/build.sh from widget/src/*.js: edit those, not this file.\n'
}

mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
{
  header bookidx-elements.js "the bookidx web components' classes, defining no tags"
  for m in "${modules[@]}"; do emit "$m"; done
} > "$tmp/bookidx-elements.js"
{
  # The defining module imports the classes rather than repeating them, so a page that loads
  # both files gets one copy of each class.
  header bookidx.js "the bookidx web components, defined on import as <bookidx-search> and <bookidx-similar>"
  sed -E "s#from '\./index\.js';#from './bookidx-elements.js';#" "$src/define.js"
} > "$tmp/bookidx.js"
mv "$tmp/bookidx-elements.js" "$tmp/bookidx.js" "$out/"
