#!/usr/bin/env bash
# Every message JSON Schema is a valid schema and every example in it
# validates; a broken example is caught (the validator can fail).
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
V=$SLUICE_ROOT/tests/tools/validate_json.py
for s in "$SLUICE_ROOT"/schemas/messages/*.schema.json; do
	out=$(/usr/bin/python3 "$V" "$s" 2>&1)
	if [ $? -eq 0 ]; then ok "$(basename "$s"): examples validate"; else not_ok "$(basename "$s"): $out"; fi
done
d=$(sl_tmpdir)
echo '{"v":1,"table":"Bad Table","op":"upsert","key":{},"lineage":{}}' >"$d/bad.jsonl"
if /usr/bin/python3 "$V" "$SLUICE_ROOT/schemas/messages/mapped_envelope.schema.json" "$d/bad.jsonl" >"$d/out" 2>&1; then
	not_ok "an invalid envelope is rejected"
else
	check_eq "an invalid envelope is rejected with its 6 problems" "$(grep -c '^/' "$d/out")" 6
	check "the bad table name is named" grep -q "table: 'Bad Table' does not match" "$d/out"
fi
sl_done
