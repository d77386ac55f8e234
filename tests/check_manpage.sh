#!/bin/sh
# The man page cannot drift from the program: every command that `BUILD/cnnlab --help` lists has its own
# section (.SS) in docs/cnnlab.1, every option of `cnnlab COMMAND --help` appears in that command's section,
# and every option and environment variable of `cnnlab --help` appears somewhere in the page. Prints
# cmocka-style PASSED/FAILED lines for tests/run.sh.
set -u
build=${1:-build}
root=$(dirname "$0")/..
bin=$build/cnnlab
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# The page as plain text: font changes and quotes dropped, roff's escaped hyphens made plain.
sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/"//g' "$root/docs/cnnlab.1" > "$tmp/page"
# The options named in a help text (--word), one a line.
options() {
    grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}
fail=0
missing() {
    echo "docs/cnnlab.1: $1"
    fail=1
}
"$bin" --help > "$tmp/help" || missing "'$bin --help' failed"
# Commands: the lines between "commands:" and the next blank line, first word.
commands=$(sed -n '/^commands:/,/^$/p' "$tmp/help" | awk 'NR > 1 && NF {print $1}')
[ -n "$commands" ] || missing "no commands found in '$bin --help'"
for opt in $(options < "$tmp/help") -h $(grep -o 'CNNLAB_[A-Z_]*' "$tmp/help" | sort -u); do
    grep -q -- "$opt" "$tmp/page" || missing "'$opt' of 'cnnlab --help' is not mentioned"
done
for cmd in $commands; do
    # The command's section: from its .SS line to the next section heading.
    awk -v c="$cmd" '/^\.S[HS]/ {on = ($1 == ".SS" && $2 == c)} on' "$tmp/page" > "$tmp/section"
    if [ ! -s "$tmp/section" ]; then
        missing "command '$cmd' has no section (.SS $cmd)"
        continue
    fi
    "$bin" "$cmd" --help > "$tmp/cmd_help" 2>&1 || missing "'$bin $cmd --help' failed"
    for opt in $(options < "$tmp/cmd_help"); do
        grep -q -- "$opt\\b" "$tmp/section" || missing "option '$opt' of '$cmd' is not in its section"
    done
done
echo "$(echo "$commands" | wc -w) commands of $bin checked against docs/cnnlab.1"
if [ $fail -eq 0 ]; then
    echo "[  PASSED  ] 1 test(s)."
else
    echo "[  FAILED  ] 1 test(s), listed above."
fi
exit $fail
