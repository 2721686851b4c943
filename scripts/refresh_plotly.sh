#!/usr/bin/env bash
# Refresh the chart library the web UI serves: plotly.js's "basic" bundle (scatter, bar, pie)
# from the npm registry, at the version pinned below. It is a fifth of the full bundle, so a
# run page draws its first chart sooner. npm checks the package's integrity hash as it
# downloads; the licence and the version are kept beside the file.
#
#   scripts/refresh_plotly.sh            # the pinned version
#   scripts/refresh_plotly.sh 4.2.0      # another version (then update PLOTLY_VERSION here)
set -euo pipefail
PLOTLY_VERSION="${1:-4.1.2}"
cd "$(dirname "$0")/.."
target=src/gittrack/ui/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "plotly.js-basic-dist-min@${PLOTLY_VERSION}" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$target"
cp "$work/package/plotly-basic.min.js" "$target/plotly-basic.min.js"
cp "$work/package/LICENSE" "$target/LICENSE.plotly"
echo "plotly.js-basic-dist-min ${PLOTLY_VERSION} (npm)" > "$target/VERSION"
echo "plotly.js-basic-dist-min ${PLOTLY_VERSION} -> $target"
