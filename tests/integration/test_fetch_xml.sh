#!/usr/bin/env bash
# XML sources (issue 27): the bundled Qualys VMDR source fetched from the
# fixture's truncation paging (WARNING/URL with id_min) and the bundled
# Nessus file source (--page) go through fetch_xml, sluice transform and
# sluice load into asset and finding, with the counts python's xml.etree
# finds in the real samples; malicious XML (XXE reading /etc/passwd,
# billion laughs, deep nesting) is refused with an error naming why, and
# publishes nothing.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"
D=$(sl_tmpdir)
SL_LOGDIR=$D
QX=$SLUICE_ROOT/data/qualys/host_list_vm_detection.xml
NX=$SLUICE_ROOT/data/nessus/nessus_v_unknown.nessus
SCALE=5

new_db xml || { not_ok "database"; exit 1; }
broker_start || { not_ok "broker"; exit 1; }
fixture_start --scale $SCALE || { not_ok "fixture"; exit 1; }

# the samples' counts, computed apart from sluice
read -r q_hosts q_dets n_hosts n_items < <(/usr/bin/python3 - "$QX" "$NX" <<'PY'
import sys, xml.etree.ElementTree as ET
q = ET.parse(sys.argv[1]).getroot().findall("./RESPONSE/HOST_LIST/HOST")
n = ET.parse(sys.argv[2]).getroot().findall("./Report/ReportHost")
items = set()
for h in n:
    ip = [t.text for t in h.findall("./HostProperties/tag") if t.get("name") == "host-ip"][0]
    for i in h.findall("./ReportItem"):
        items.add((ip, i.get("pluginID"), i.get("port"), i.get("protocol")))
print(len(q), sum(len(h.findall("./DETECTION_LIST/DETECTION")) for h in q),
      len(n), len(items))
PY
)
want_hosts=$((q_hosts * SCALE))
want_dets=$((q_dets * SCALE))
check "the samples hold records ($q_hosts hosts, $q_dets detections; $n_hosts hosts, $n_items items)" \
	test "$q_hosts" -gt 0 -a "$q_dets" -gt 0 -a "$n_hosts" -gt 0 -a "$n_items" -gt 0

bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/qualys_detection.json" \
	"$SLUICE_ROOT/transformers/maps/nessus.json"

# Qualys: the bundled definition, two hosts a page
jq '.request.query.truncation_limit = "2"' "$SLUICE_ROOT/producers/sources/qualys_detections.json" \
	>"$D/qualys.json"
fetch_once qualys "$D/qualys.json" "$SLUICE_FIXTURE_URL/qualys"
check_eq "qualys: sync exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.qualys_detections)
check_eq "qualys: pages by WARNING/URL (id_min)" "$pages" $(((want_hosts + 1) / 2))
check_eq "qualys: every host published once" "$recs" "$want_hosts"
hdrs=$(kcat -b "$SLUICE_BROKERS" -C -t raw.qualys_detections -e -q -f '%h\n' | head -1)
for h in source_format=xml content_type=application/json 'records_path=$.records'; do
	case "$hdrs" in *"$h"*) ok "qualys: header $h" ;; *) not_ok "qualys: header $h missing in $hdrs" ;; esac
done
ids=$(raw_ids raw.qualys_detections ID | sort -u | wc -l)
check_eq "qualys: distinct host IDs" "$ids" "$want_hosts"
check "qualys: sync_done counts the hosts" grep -q "event=sync_done source=qualys_detections .*records=$want_hosts" "$D/qualys.log"

# Nessus: the bundled file source, the real export as --page
timeout 60 "$SLUICE_BIN" fetch "$SLUICE_ROOT/producers/sources/nessus.json" --page "$NX" \
	>"$D/nessus.out" 2>"$D/nessus.log"
check_eq "nessus: --page exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nessus)
check_eq "nessus: one page" "$pages" 1
check_eq "nessus: every ReportHost" "$recs" "$n_hosts"

n_qualys_assets() { q "SELECT count(*) FROM asset WHERE asset_uuid::text LIKE '5155a1ed-%'"; }
n_nessus_assets() { q "SELECT count(*) FROM asset WHERE asset_uuid::text LIKE '4e55e550-%'"; }
n_qualys_findings() { q "SELECT count(*) FROM finding WHERE asset_uuid::text LIKE '5155a1ed-%'"; }
n_nessus_findings() { q "SELECT count(*) FROM finding WHERE asset_uuid::text LIKE '4e55e550-%'"; }
wait_out 60 = "$want_dets" n_qualys_findings
check_eq "qualys: assets in PostgreSQL" "$(n_qualys_assets)" "$want_hosts"
check_eq "qualys: findings in PostgreSQL (DETECTIONs)" "$(n_qualys_findings)" "$want_dets"
wait_out 60 = "$n_items" n_nessus_findings
check_eq "nessus: assets in PostgreSQL" "$(n_nessus_assets)" "$n_hosts"
check_eq "nessus: findings in PostgreSQL (ReportItems)" "$(n_nessus_findings)" "$n_items"
check_eq "qualys: a detection's row as in the sample" \
	"$(q "SELECT plugin_id, port, protocol, severity, state, last_found FROM finding WHERE asset_uuid = '5155a1ed-0000-0000-0000-000006506432' AND plugin_id = 38170")" \
	"38170|3389|TCP|low|ACTIVE|2018-04-13 03:48:50+00"
check_eq "nessus: a host's row as in the sample" \
	"$(q "SELECT hostname, host(ipv4), mac_address FROM asset WHERE asset_uuid = '4e55e550-0000-0000-0000-010031112029'")" \
	"qa3app09|10.31.112.29|00:50:56:81:01:e3"
check_eq "lineage: a finding names its raw topic" \
	"$(q "SELECT _lineage->>'topic' FROM finding WHERE asset_uuid = '5155a1ed-0000-0000-0000-000006506432' LIMIT 1")" \
	"raw.qualys_detections"
check_eq "no dead letters" \
	"$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "00"

# malicious XML: refused before anything is expanded or read, nothing published
cat >"$D/xxe.xml" <<'XML'
<?xml version="1.0"?>
<!DOCTYPE NessusClientData_v2 [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<NessusClientData_v2><Report><ReportHost name="&xxe;"><x>&xxe;</x></ReportHost></Report></NessusClientData_v2>
XML
{
	echo '<?xml version="1.0"?>'
	echo '<!DOCTYPE NessusClientData_v2 ['
	echo '<!ENTITY lol "lol">'
	prev=lol
	for i in 1 2 3 4 5 6 7 8 9; do
		printf '<!ENTITY lol%s "' "$i"
		for _ in 1 2 3 4 5 6 7 8 9 10; do printf '&%s;' "$prev"; done
		echo '">'
		prev=lol$i
	done
	echo ']>'
	echo '<NessusClientData_v2><Report><ReportHost name="x"><x>&lol9;</x></ReportHost></Report></NessusClientData_v2>'
} >"$D/laughs.xml"
/usr/bin/python3 -c '
import sys
n = 100000
sys.stdout.write("<NessusClientData_v2><Report><ReportHost name=\"x\">" + "<a>" * n + "</a>" * n + "</ReportHost></Report></NessusClientData_v2>")' >"$D/deep.xml"
for case in "xxe:declares entities" "laughs:declares entities" "deep:nests deeper than limits.max_depth (64)"; do
	f=${case%%:*}
	why=${case#*:}
	timeout 60 "$SLUICE_BIN" fetch "$SLUICE_ROOT/producers/sources/nessus.json" --page "$D/$f.xml" \
		>/dev/null 2>"$D/$f.log"
	check_eq "$f: refused (exit 1)" "$?" 1
	grep -q "event=sync_failed.*$why" "$D/$f.log" &&
		ok "$f: the error says \"$why\"" || not_ok "$f: $(tail -1 "$D/$f.log")"
	! grep -q "root:" "$D/$f.log" && ok "$f: nothing of /etc/passwd in the log" ||
		not_ok "$f: /etc/passwd leaked"
done
read -r pages recs msgs < <(raw_count raw.nessus)
check_eq "malicious XML: nothing more published" "$recs" "$n_hosts"

sl_done
