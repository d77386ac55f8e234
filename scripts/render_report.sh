#!/bin/sh
# Renders a cnnlab report page in a real browser (headless Chromium, Debian package `chromium`):
#   scripts/render_report.sh REPORT_DIR [OUT.png]
# writes OUT.png (default REPORT_DIR/index-screenshot.png), a full-height screenshot of REPORT_DIR/index.html,
# and fails when the page logs a console message (a script error: the page has no scripts, so any message is
# unexpected), when the DOM Chromium built lacks the report's sections, or when an <img> did not load
# (naturalWidth 0 is not visible from outside, so every src is also checked on disk by tests/test_report_cli).
set -eu
dir=$(cd "$1" && pwd)
out=${2:-$dir/index-screenshot.png}
page="file://$dir/index.html"
[ -f "$dir/index.html" ] || { echo "render_report: no $dir/index.html" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "render_report: chromium not found (apt-get install chromium)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files"
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --enable-logging=stderr --v=0 --window-size=1400,6000 --screenshot="$out" \
    "$page" 2>"$tmp/log" >/dev/null
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --dump-dom "$page" 2>/dev/null >"$tmp/dom.html"
status=0
if grep -q 'CONSOLE' "$tmp/log"; then
    echo "render_report: the page logged console messages:" >&2
    grep 'CONSOLE' "$tmp/log" >&2
    status=1
fi
for section in Results Conclusions Pictures; do
    grep -q "<h2>$section</h2>" "$tmp/dom.html" || { echo "render_report: DOM lacks '$section'" >&2; status=1; }
done
[ -s "$out" ] || { echo "render_report: no screenshot written" >&2; status=1; }
[ $status -eq 0 ] && echo "render_report: $out ($(grep -c '<img' "$tmp/dom.html") images in the DOM, no console messages)"
exit $status
