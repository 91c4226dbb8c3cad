#!/usr/bin/env bash
# test_ops_compose: the compose file's worker health checks ask `sluice
# health` for /readyz on the port the workers serve; the monitoring profile
# adds Prometheus and Grafana; Prometheus scrapes services that exist; the
# Grafana dashboard and the alert rules only query metrics sluice exports.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
cd "$SLUICE_ROOT" || exit 1
d=$(sl_tmpdir)
if ! command -v docker-compose >/dev/null; then not_ok "docker-compose is installed"; exit 1; fi
docker-compose -f docker-compose.yml --profile monitoring config >"$d/config.yml" 2>"$d/err"
check_eq "docker-compose config accepts the file with the monitoring profile" "$?" 0
python3 - "$d/config.yml" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]
def check(what, cond):
    print(("ok - " if cond else "not ok - ") + what)
workers = [s for s, v in c.items() if (v.get("command") or [""])[0] in ("fetch", "transform", "load")]
check("the compose file runs fetchers, transformers and loaders (%d)" % len(workers), len(workers) >= 5)
for s in workers:
    v = c[s]
    hc = v.get("healthcheck", {}).get("test", [])
    env = v.get("environment", {})
    port = str(env.get("SLUICE_HTTP_PORT"))
    check("%s: serves on SLUICE_HTTP_PORT, bound to 0.0.0.0" % s,
          port.isdigit() and int(port) > 0 and env.get("SLUICE_HTTP_BIND") == "0.0.0.0")
    check("%s: health check is sluice health on its /readyz" % s,
          "health" in hc and any(x.endswith(":%s/readyz" % port) for x in hc))
for s in ("prometheus", "grafana"):
    check("%s is in the monitoring profile" % s, "monitoring" in c.get(s, {}).get("profiles", []))
PY
"$SLUICE_BIN" health --metrics-reference | grep -oE '`sluice_[a-z_]+`' | tr -d '`' | sort -u >"$d/names"
python3 - "$d/names" docker-compose.yml <<'PY'
import json, re, sys, yaml
names = set(open(sys.argv[1]).read().split())
services = set(yaml.safe_load(open(sys.argv[2]))["services"])
def check(what, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else ": " + detail))
def used(expr):
    out = set()
    for m in re.findall(r"sluice_[a-z_]+", expr):
        out.add(re.sub(r"_(bucket|sum|count)$", "", m) if m not in names else m)
    return out
dash = json.load(open("deploy/grafana/dashboards/sluice.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
check("the dashboard has panels with queries", len(exprs) >= 8)
bad = sorted(m for e in exprs for m in used(e) if m not in names)
check("the dashboard queries only exported metrics", not bad, ", ".join(bad))
prom = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
scraped = [n for j in prom["scrape_configs"] for sd in j.get("dns_sd_configs", []) for n in sd["names"]]
missing = [n for n in scraped if n not in services]
check("prometheus scrapes services that exist", scraped and not missing, ", ".join(missing))
check("prometheus scrapes port 9100", all(sd["port"] == 9100 for j in prom["scrape_configs"] for sd in j.get("dns_sd_configs", [])))
rules = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
rexprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
bad = sorted(m for e in rexprs for m in used(e) if m not in names)
check("alert rules query only exported metrics", rexprs and not bad, ", ".join(bad))
prov = yaml.safe_load(open("deploy/grafana/provisioning/datasources/prometheus.yml"))
uid = prov["datasources"][0]["uid"]
check("panels use the provisioned datasource", all(p["datasource"]["uid"] == uid for p in dash["panels"]))
PY
sl_done
