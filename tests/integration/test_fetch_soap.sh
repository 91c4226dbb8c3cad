#!/usr/bin/env bash
# SOAP sources (issue 27): the bundled Salesforce partner API definition
# (SOAP 1.1 query, then queryMore with the answer's queryLocator until
# done) against the fixture's SOAP route, through sluice transform and
# sluice load into salesforce_record; a soapenv:Server fault is retried
# like a 5xx, an sf: fault (a bad session, a bad query locator) fails the
# sync at once naming its faultcode and faultstring, and publishes nothing.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"
D=$(sl_tmpdir)
SL_LOGDIR=$D
SX=$SLUICE_ROOT/data/salesforce/query_response.xml
SCALE=250
BATCH=60

new_db soap || { not_ok "database"; exit 1; }
# the topics up front: the workers subscribe once, with no rebalance when
# the first page or row creates one
broker_start --topic raw.salesforce:4 --topic mapped.salesforce_record:4 \
	--topic dlq.transform:1 --topic dlq.load:1 || { not_ok "broker"; exit 1; }
fixture_start --scale $SCALE || { not_ok "fixture"; exit 1; }

# the sample's records, counted apart from sluice
n_rec=$(/usr/bin/python3 - "$SX" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "p": "urn:partner.soap.sforce.com"}
r = ET.parse(sys.argv[1]).getroot().findall("./s:Body/p:queryResponse/p:result/p:records", ns)
print(len(r))
PY
)
want=$((n_rec * SCALE))
want_pages=$(((want + BATCH - 1) / BATCH))
check "the sample holds records ($n_rec)" test "$n_rec" -gt 0

bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/salesforce.json"

# the bundled definition, $BATCH records a batch; a session id with XML's
# special characters, escaped into the envelope
jq --arg b "$BATCH" '.soap.envelope |= sub("<urn:batchSize>500"; "<urn:batchSize>" + $b) |
	.soap.next_envelope |= sub("<urn:batchSize>500"; "<urn:batchSize>" + $b) |
	.retry.base_ms = 100' \
	"$SLUICE_ROOT/producers/sources/salesforce.json" >"$D/sf.json"
export SALESFORCE_SESSION_ID='00Dx0000000ABCD!AQ<&>"'"'"'x'
fetch_once sf "$D/sf.json" "$SLUICE_FIXTURE_URL/salesforce"
check_eq "salesforce: sync exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.salesforce)
check_eq "salesforce: pages by queryLocator (queryMore)" "$pages" "$want_pages"
check_eq "salesforce: every record published once" "$recs" "$want"
ids=$(raw_ids raw.salesforce "sf:Id" | sort -u | wc -l)
check_eq "salesforce: distinct Ids" "$ids" "$want"
check "salesforce: sync_done counts the records" \
	grep -q "event=sync_done source=salesforce .*records=$want" "$D/sf.log"
check "the session id is nowhere in the log" bash -c "! grep -qF 'ABCD!AQ' '$D/sf.log'"

n_rows() { q "SELECT count(*) FROM salesforce_record"; }
wait_out 60 = "$want" n_rows
check_eq "salesforce: rows in PostgreSQL" "$(n_rows)" "$want"
check_eq "salesforce: a record's row as in the sample" \
	"$(q "SELECT sobject_type, name, stage_name, fields->>'@xsi:type' FROM salesforce_record WHERE record_id = '006A000000LZhwNIAT'")" \
	"Opportunity|Joe Heth Opportunity|Prospecting|sf:sObject"
check_eq "salesforce: copy 249 of the second record" \
	"$(q "SELECT name, stage_name FROM salesforce_record WHERE record_id = '006A0000000249xIAF'")" \
	"Boyd Test #1|Value Proposition"
check_eq "lineage: a row names its raw topic" \
	"$(q "SELECT _lineage->>'topic' FROM salesforce_record LIMIT 1")" "raw.salesforce"
check_eq "no dead letters" \
	"$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "00"

# a soapenv:Server fault (HTTP 500) is retried, and the sync completes
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
fx_fault '{"path_prefix": "/salesforce/", "count": 2, "kind": "soap_fault"}'
fetch_once sf2 "$D/sf.json" "$SLUICE_FIXTURE_URL/salesforce"
check_eq "server fault: sync exit 0 after retries" "$?" 0
check "server fault: the retry names the fault" \
	grep -q "event=retry.*SOAP fault soapenv:Server (HTTP 500).*injected fault" "$D/sf2.log"
n_req=$(fx_get /_fixture/log | jq length)
check_eq "server fault: two more requests than pages" "$n_req" $((want_pages + 2))

# a client-side fault is bad for good: one request, the sync fails saying why
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
SALESFORCE_SESSION_ID= fetch_once sf3 "$D/sf.json" "$SLUICE_FIXTURE_URL/salesforce"
check_eq "bad session: sync fails (exit 1)" "$?" 1
check "bad session: the error names the fault" \
	grep -q "event=sync_failed.*SOAP fault sf:INVALID_SESSION_ID (HTTP 500).*Invalid Session ID" "$D/sf3.log"
check_eq "bad session: not retried" "$(fx_get /_fixture/log | jq length)" 1

curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
jq '.soap.envelope = (.soap.next_envelope | sub("\\$\\{next\\}"; "01gFX0000000001AAA-999999"))' \
	"$D/sf.json" >"$D/sf4.json"
fetch_once sf4 "$D/sf4.json" "$SLUICE_FIXTURE_URL/salesforce"
check_eq "bad locator: sync fails (exit 1)" "$?" 1
check "bad locator: the error names the fault" \
	grep -q "event=sync_failed.*sf:INVALID_QUERY_LOCATOR.*invalid query locator" "$D/sf4.log"
check_eq "bad locator: not retried" "$(fx_get /_fixture/log | jq length)" 1

read -r pages recs msgs < <(raw_count raw.salesforce)
check_eq "faults: only the completed syncs' records published" "$recs" $((want * 2))

sl_done
