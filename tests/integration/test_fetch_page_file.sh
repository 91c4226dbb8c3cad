#!/usr/bin/env bash
# sluice fetch SOURCE --page FILE (issue 23): a page from a local file goes
# through the path every fetched page takes: the same checks (JSON, limits),
# chunking and headers (url=file://..., http_status 200), no request, no
# credentials, the cursor untouched; a bad page publishes nothing.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"

broker_start || { not_ok "broker"; exit 1; }
D=$(sl_tmpdir)
: "${SL_LOGDIR:=$(sl_tmpdir)}"
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json
want=$(jq '.vulnerabilities | length' "$KEV")

# the bundled KEV definition, with a message limit that makes chunks; its
# base_url is never asked (nothing listens there)
sed -e 's/"interval_seconds"/"max_message_bytes": 500000, "interval_seconds"/' \
	-e 's|"base_url": "[^"]*"|"base_url": "http://127.0.0.1:9"|' \
	"$SLUICE_ROOT/producers/sources/kev.json" >"$D/kev.json"
cp "$KEV" "$D/page.json"
(cd "$D" && timeout 60 "$SLUICE_BIN" fetch kev.json --page page.json \
	>"$SL_LOGDIR/kev.out" 2>"$SL_LOGDIR/kev.log")
check_eq "page file: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.kev)
check_eq "page file: one page" "$pages" 1
check_eq "page file: every record" "$recs" "$want"
check "page file: chunked like a fetched page ($msgs messages)" test "$msgs" -ge 3
big=$(kcat -b "$SLUICE_BROKERS" -C -t raw.kev -e -q -f '%S\n' | sort -n | tail -1)
check "page file: chunks within max_message_bytes ($big)" test "$big" -le 500000
hdrs=$(kcat -b "$SLUICE_BROKERS" -C -t raw.kev -e -q -f '%h\n' | head -1)
for h in source=kev run= page=0 chunk= "url=file://$(realpath "$D/page.json")" fetched_at= \
	http_status=200 content_type=application/json 'records_path=$.vulnerabilities'; do
	case "$hdrs" in *"$h"*) ok "page file: header $h" ;; *) not_ok "page file: header $h missing in $hdrs" ;; esac
done
grep -q "event=sync_done source=kev .*records=$want" "$SL_LOGDIR/kev.log" &&
	ok "page file: sync_done counts the records" || not_ok "page file: $(tail -2 "$SL_LOGDIR/kev.log")"
state=$(kcat -b "$SLUICE_BROKERS" -C -t sluice.state -e -q 2>/dev/null | grep -c '"source":"kev"')
check_eq "page file: no cursor written to sluice.state" "${state:-0}" 0

# a page that is not JSON: the same verdict as a fetched one, nothing published
head -c 20000 "$KEV" >"$D/cut.json"
timeout 60 "$SLUICE_BIN" fetch "$D/kev.json" --page "$D/cut.json" >/dev/null 2>"$SL_LOGDIR/cut.log"
check_eq "cut page: exit 1" "$?" 1
grep -q 'event=sync_failed.*body is not JSON' "$SL_LOGDIR/cut.log" &&
	ok "cut page: the error says why" || not_ok "cut page: $(tail -1 "$SL_LOGDIR/cut.log")"
read -r pages recs msgs < <(raw_count raw.kev)
check_eq "cut page: nothing more published" "$recs" "$want"

# limits apply: more records than limits.max_records
sed 's/"interval_seconds"/"limits": {"max_records": 10}, "interval_seconds"/' "$D/kev.json" >"$D/kev_lim.json"
timeout 60 "$SLUICE_BIN" fetch "$D/kev_lim.json" --page "$D/page.json" >/dev/null 2>"$SL_LOGDIR/lim.log"
check_eq "max_records: exit 1" "$?" 1
grep -q 'event=sync_failed.*over limits.max_records (10)' "$SL_LOGDIR/lim.log" &&
	ok "max_records: the error names the limit" || not_ok "max_records: $(tail -1 "$SL_LOGDIR/lim.log")"
read -r pages recs msgs < <(raw_count raw.kev)
check_eq "max_records: nothing more published" "$recs" "$want"

# credentials are not needed: a source whose key variable is unset
cat >"$D/otx.json" <<JSON
{"name": "otx_file", "base_url": "http://127.0.0.1:9",
 "request": {"path": "/api/v1/pulses/subscribed"}, "records": "\$.results",
 "auth": {"type": "header", "name": "X-OTX-API-KEY", "env": "OTX_KEY_UNSET"},
 "paging": {"style": "next_url", "next": "\$.next"}}
JSON
echo '{"count": 2, "next": null, "results": [{"id": 1}, {"id": 2}]}' >"$D/otx_page.json"
timeout 60 "$SLUICE_BIN" fetch "$D/otx.json" --page "$D/otx_page.json" >/dev/null 2>"$SL_LOGDIR/otx.log"
check_eq "no credentials: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.otx_file)
check_eq "no credentials: both records" "$recs" 2

"$SLUICE_BIN" fetch "$D/kev.json" --page "$D/missing.json" >/dev/null 2>&1
check_eq "missing file: exit 1" "$?" 1

sl_done
