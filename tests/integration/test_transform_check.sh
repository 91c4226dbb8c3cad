#!/usr/bin/env bash
# test_transform_check: the user-facing contract of `sluice check` and
# `sluice lint` for maps: outputs, exit codes 0/2/3, positioned errors.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
G=$SLUICE_ROOT/tests/golden/maps

"$SLUICE_BIN" check "$G/choices/map.json" "$G/choices/input.json" >"$D/out" 2>"$D/err"
check_eq "check exits 0" "$?" "0"
check_eq "three rows on stdout" "$(wc -l <"$D/out")" "3"
grep -q '^dead letter: field severity: unknown choice "critical"$' "$D/err" &&
	ok "dead letter reason on stderr" || not_ok "dead letter reason on stderr: $(cat "$D/err")"
grep -q '^check: choices on .*: 4 records, 3 rows, 1 dead letters, 0 skipped, 0 ignored$' "$D/err" &&
	ok "summary line" || not_ok "summary line: $(tail -1 "$D/err")"

"$SLUICE_BIN" check "$G/choices/map.json" "$G/choices/input.json" --expect "$G/choices/expected.json" >/dev/null 2>&1
check_eq "--expect that matches exits 0" "$?" "0"
sed 's/"threat": "malware"/"threat": "other"/' "$G/choices/expected.json" >"$D/wrong.json"
"$SLUICE_BIN" check "$G/choices/map.json" "$G/choices/input.json" --expect "$D/wrong.json" >/dev/null 2>"$D/err"
check_eq "--expect that differs exits 3" "$?" "3"
grep -q 'output 0: row differs' "$D/err" && ok "the difference is named" || not_ok "the difference is named: $(tail -2 "$D/err")"
# JSON lines work as an expectation too
"$SLUICE_BIN" check "$G/choices/map.json" "$G/choices/input.json" >"$D/lines.jsonl" 2>/dev/null
"$SLUICE_BIN" check "$G/choices/map.json" "$G/choices/input.json" --expect "$D/lines.jsonl" >/dev/null 2>&1
check_eq "--expect of JSON lines that lack the dead letter exits 3" "$?" "3"

"$SLUICE_BIN" check "$G/lint_errors/map.json" "$G/choices/input.json" >/dev/null 2>"$D/err"
check_eq "check on a bad map exits 2" "$?" "2"
"$SLUICE_BIN" check >/dev/null 2>&1
check_eq "check without arguments exits 2" "$?" "2"

"$SLUICE_BIN" lint "$G/lint_errors/map.json" >/dev/null 2>"$D/err"
check_eq "lint of a bad map exits 2" "$?" "2"
grep -q "lint_errors/map.json:10:24: fields.n.type: unknown type \"int\"" "$D/err" &&
	ok "lint names file, line, column and path" || not_ok "lint position: $(head -3 "$D/err")"
out=$("$SLUICE_BIN" lint "$SLUICE_ROOT"/transformers/maps/*.json 2>&1)
check_eq "lint of the bundled maps exits 0" "$?" "0"
check_eq "every bundled map is ok" "$(grep -c ': ok$' <<<"$out")" "$(ls "$SLUICE_ROOT"/transformers/maps/*.json | wc -l)"

"$SLUICE_BIN" check "$SLUICE_ROOT/transformers/maps/nvd_cve.json" "$SLUICE_ROOT/data/nvd/nvd_cves_combined_dedup.json" >/dev/null 2>"$D/err"
grep -q '^drift: vulnerability: source field affected\[\*\]\.affectedData\[\*\]\.vendor is read by no map field (1 of 476 records)$' "$D/err" &&
	ok "drift names an unread source field" || not_ok "drift: $(grep drift "$D/err" | head -3)"
grep -q 'drift: .* cveID\|drift: vulnerability: source field id ' "$D/err" &&
	not_ok "a mapped field is reported as drift" || ok "mapped fields are not drift"
# issue 23: what child tables and filters read is read too
"$SLUICE_BIN" check "$SLUICE_ROOT/transformers/maps/nvd_cve.json" "$SLUICE_ROOT/data/nvd/vunnel_full-page.json" >/dev/null 2>"$D/err"
for f in 'references\[\*\]\.url' 'references\[\*\]\.tags' 'weaknesses\[\*\]\.description\[\*\]\.value' \
	'configurations\[\*\]\.nodes\[\*\]\.cpeMatch\[\*\]\.criteria' 'descriptions\[\*\]\.lang'; do
	grep -q "^drift: vulnerability: source field $f " "$D/err" &&
		not_ok "drift reports ${f//\\/}, which a child table or filter reads" ||
		ok "drift: ${f//\\/} is read (child table or filter)"
done
grep -q '^drift: vulnerability: source field weaknesses\[\*\]\.source is read by no map field' "$D/err" &&
	ok "drift still names what nothing reads (weaknesses[*].source)" || not_ok "drift: $(grep drift "$D/err" | head -3)"
# scripts run in check as in the worker (issue 28); --expect compares the
# outputs, not the golden case's notes
/usr/bin/python3 -c 'import json,sys; print(json.dumps([o for o in json.load(open(sys.argv[1])) if "note" not in o]))' \
	"$G/script_values/expected.json" >"$D/script_expect.json"
"$SLUICE_BIN" check "$G/script_values/map.json" "$G/script_values/input.json" \
	--expect "$D/script_expect.json" >"$D/out" 2>"$D/err"
check_eq "check of a map with scripts matches its expected outputs" "$?" "0"
grep -q '^dead letter: script: script:3: E is refused$' "$D/err" &&
	ok "a record script's error names its line" || not_ok "script error line: $(grep 'dead letter' "$D/err" | head -3)"
grep -q '^ignored: scored: dropped by script$' "$D/err" &&
	ok "a record script's false drops the record" || not_ok "script drop: $(cat "$D/err" | head -5)"
"$SLUICE_BIN" lint "$G/script_lint/map.json" >/dev/null 2>"$D/err"
check_eq "lint of a script that does not compile exits 2" "$?" "2"
grep -q 'script_lint/map.json:8:16: fields.broken.script: script does not compile: fields.broken.script:2:' "$D/err" &&
	ok "lint names the script's file:line" || not_ok "script lint: $(cat "$D/err")"
"$SLUICE_BIN" check --effective "$G/extends_nvd/map.json" >"$D/eff.json" 2>"$D/err"
check_eq "check --effective exits 0" "$?" "0"
check_eq "the effective map keeps the base's fields and adds risk" \
	"$(/usr/bin/python3 -c 'import json,sys; m = json.load(open(sys.argv[1])); print("published" in m["fields"], "risk" in m["fields"], "cisa_exploit_add" in m["fields"])' "$D/eff.json")" \
	"True True False"
ref=$("$SLUICE_BIN" check --reference)
if [ -n "$ref" ] && /usr/bin/python3 -c 'import sys; sys.exit(0 if open(sys.argv[1]).read().find(sys.stdin.read()) >= 0 else 1)' \
	"$SLUICE_ROOT/docs/maps.md" <<<"$ref"; then
	ok "docs/maps.md holds the current option tables"
else
	not_ok "docs/maps.md is out of date: regenerate with sluice check --reference"
fi
sl_done
