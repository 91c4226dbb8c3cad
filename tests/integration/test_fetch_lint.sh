#!/usr/bin/env bash
# Source definitions: every bundled one is valid; each bad one in
# tests/golden/sources/<case>/input.json is refused with the error in
# error.txt (file:line:col: path: message); docs/sources.md carries the
# reference generated from the option tables.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

for f in "$SLUICE_ROOT"/producers/sources/*.json; do
	if out=$("$SLUICE_BIN" lint "$f" 2>&1); then ok "lint: $(basename "$f") is valid"
	else not_ok "lint: $(basename "$f"): $out"; fi
done
for d in "$SLUICE_ROOT"/tests/golden/sources/*/; do
	name=$(basename "$d")
	want=$(cat "$d/error.txt")
	got=$(cd "$d" && "$SLUICE_BIN" lint input.json 2>&1)
	rc=$?
	check_eq "lint $name: exit code" "$rc" 2
	case "$got" in
	*"$want"*) ok "lint $name: says '$want'" ;;
	*) not_ok "lint $name: want '$want', got '$got'" ;;
	esac
	got=$(cd "$d" && "$SLUICE_BIN" fetch input.json --once 2>&1)
	check_eq "fetch $name: refused as bad configuration" "$?" 2
done
ref=$("$SLUICE_BIN" fetch --reference)
if grep -qF -- "$(head -c 2000 <<<"$ref")" "$SLUICE_ROOT/docs/sources.md" &&
	/usr/bin/python3 -c 'import sys; sys.exit(0 if open(sys.argv[1]).read().find(sys.stdin.read()) >= 0 else 1)' \
		"$SLUICE_ROOT/docs/sources.md" <<<"$ref"; then
	ok "docs/sources.md holds the current option reference"
else
	not_ok "docs/sources.md is out of date: regenerate with sluice fetch --reference"
fi
sl_done
