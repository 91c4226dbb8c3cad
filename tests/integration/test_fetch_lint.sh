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
# a source that extends a bundled one says only what it changes (issue 28)
X=$(sl_tmpdir)
printf '%s\n' '{"extends": "kev", "name": "kev_slow", "rate_limit": {"requests": 1}, "remove": ["description"]}' >"$X/kev_slow.json"
"$SLUICE_BIN" lint --effective "$X/kev_slow.json" >"$X/eff.json" 2>"$X/err"
check_eq "lint --effective of a source extension exits 0" "$?" 0
check_eq "the effective source: the base's request and paging, the new limit, no description" \
	"$(/usr/bin/python3 -c 'import json,sys; s = json.load(open(sys.argv[1])); print(s["name"], s["request"]["path"], s["rate_limit"], "description" in s, "extends" in s)' "$X/eff.json")" \
	"kev_slow /known_exploited_vulnerabilities.json {'requests': 1, 'per_seconds': 60} False False"
check_eq "its topic is its own" "$("$SLUICE_BIN" lint --topics "$X/kev_slow.json")" "raw.kev_slow"
# a source and its map both need raw.<source>: listed once
all=$("$SLUICE_BIN" lint --topics "$SLUICE_ROOT/producers/sources" "$SLUICE_ROOT/transformers/maps")
check_eq "lint --topics lists each topic once" "$(sort <<<"$all" | uniq -d)" ""
check_eq "raw.nvd among them" "$(grep -cx raw.nvd <<<"$all")" 1
printf '%s\n' '{"extends": "kev", "name": "kev_bad", "remove": ["no_such_key"]}' >"$X/kev_bad.json"
got=$("$SLUICE_BIN" lint "$X/kev_bad.json" 2>&1)
check_eq "a removal that matches nothing is refused" "$?" 2
case "$got" in
*'kev_bad.json:1:1: remove: "no_such_key" is no field, table or key of the base'*) ok "and says where and what" ;;
*) not_ok "removal message: $got" ;;
esac
ref=$("$SLUICE_BIN" fetch --reference)
if grep -qF -- "$(head -c 2000 <<<"$ref")" "$SLUICE_ROOT/docs/sources.md" &&
	/usr/bin/python3 -c 'import sys; sys.exit(0 if open(sys.argv[1]).read().find(sys.stdin.read()) >= 0 else 1)' \
		"$SLUICE_ROOT/docs/sources.md" <<<"$ref"; then
	ok "docs/sources.md holds the current option reference"
else
	not_ok "docs/sources.md is out of date: regenerate with sluice fetch --reference"
fi
sl_done
