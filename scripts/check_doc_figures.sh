#!/bin/sh
# The logs that README.md and docs/*.md cite for their figures must be in the repository: every path written
# as docs/runs/... or docs/bench-logs/... (from the repository root), and in docs/*.md every link to
# runs/... or bench-logs/... and every bench-logs/... path (from docs/), must exist. Placeholders (<date>,
# $D, DIR, globs) are skipped. It checks that a cited log is there, not that it holds the figure: that is
# the author's to grep. A figure without a log is measured again or removed, never kept as "not recorded":
# that phrase within 150 characters of a digit (line breaks read as spaces) fails the check too.
# Prints cmocka-style PASSED/FAILED lines for tests/run.sh.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
fail=0
checked=0

tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT

# Paths from the repository root; the character class stops at what ends a path in Markdown prose.
rooted() {
    grep -oE "docs/(runs|bench-logs)/[^] \`)\"',;:]*" "$1" | sort -u
}
# Paths from docs/: link targets to runs/ or bench-logs/, and bench-logs/ anywhere (runs/ alone is also the
# name of cnnlab's output folder, which the docs show in commands).
relative() {
    { grep -oE "\]\((runs|bench-logs)/[^) ]*" "$1" | sed 's/^](//'
      grep -oE "(^|[^a-z/-])bench-logs/[^] \`)\"',;:]*" "$1" | sed 's/^[^b]//'; } | sort -u
}

# Each "not recorded" with a digit within 150 characters of it, the file read as one line.
unrecorded() {
    tr '\n' ' ' < "$1" | grep -oiE ".{0,150}not +recorded.{0,150}" | grep '[0-9]'
}

# One line per cited path: the folder it is relative to, the citing file, the path.
for f in "$root/README.md" "$root"/docs/*.md; do
    name=${f#"$root"/}
    rooted "$f" | sed "s|^|$root\t$name\t|" >> "$tmp"
    case "$name" in docs/*) relative "$f" | sed "s|^|$root/docs\t$name\t|" >> "$tmp" ;; esac
    unrecorded "$f" | while IFS= read -r hit; do
        echo "$name: a figure marked \"not recorded\" (measure it again with a log, or remove it): ...$hit..."
    done
    unrecorded "$f" > /dev/null && fail=1
done

tab=$(printf '\t')
while IFS="$tab" read -r base name p; do
    case "$p" in *'<'* | *'>'* | *'$'* | *'*'* | *'{'* | *'['* | *DIR*) continue ;; esac
    p=${p%.}
    checked=$((checked + 1))
    [ -e "$base/$p" ] && continue
    echo "$name: cites '$p', which is not in the repository"
    fail=1
done < "$tmp"
echo "$checked cited log paths in README.md and docs/*.md checked"
if [ $fail -eq 0 ]; then
    echo "[  PASSED  ] 1 test(s)."
else
    echo "[  FAILED  ] 1 test(s), listed above."
fi
exit $fail
