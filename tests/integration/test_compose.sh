#!/usr/bin/env bash
# docker-compose.yml is valid (docker-compose config; no engine runs here),
# names the services the README promises, and every source definition and
# map its workers run exists in the repository.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
cd "$SLUICE_ROOT" || exit 1
d=$(sl_tmpdir)
if ! command -v docker-compose >/dev/null; then not_ok "docker-compose is installed"; exit 1; fi
docker-compose -f docker-compose.yml config >"$d/config.yml" 2>"$d/err"
check_eq "docker-compose config accepts the file" "$?" 0
for s in kafka topic-init postgres fetch-kev fetch-nvd fetch-urlhaus transformer loader; do
	check "service $s is defined" grep -q "^  $s:$" "$d/config.yml"
done
for f in $(grep -oE '"(sources|maps)(/[a-z0-9_]+\.json)?"' docker-compose.yml | tr -d '"' | sort -u); do
	case $f in
	sources*) p=producers/$f ;;
	maps*) p=transformers/$f ;;
	esac
	check "compose runs $f, which exists as $p" test -e "$p"
done
# the stack keeps its data, is reachable from the host, creates its topics
# from the bundled sources and maps, and runs every bundled map
python3 - "$d/config.yml" <<'PY'
import os, re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]
def check(what, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else ": " + str(detail)))
k = c["kafka"]
env = k["environment"]
# docker-compose 1.29 prints volumes and ports in their short syntax
def split(v):
    if isinstance(v, dict):
        return [str(v.get("source", "")), str(v.get("target", ""))]
    return str(v).split(":")
mounts = [split(v)[1] for v in k.get("volumes", []) if split(v)[0] == "kafka-data"]
target = mounts[0] if mounts else None
check("kafka's log dirs are the kafka-data volume's mount point",
      target and env.get("KAFKA_LOG_DIRS") == target, (env.get("KAFKA_LOG_DIRS"), target))
check("kafka does not create topics on first use",
      str(env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")).lower() == "false",
      env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE"))
adv = env.get("KAFKA_ADVERTISED_LISTENERS", "")
host = re.search(r"([A-Z_]+)://localhost:(\d+)", adv)
ports = [p for p in k.get("ports", []) if host and
         re.fullmatch(r"127\.0\.0\.1:%s:%s(/tcp)?" % (host.group(2), host.group(2)), str(p))]
check("kafka advertises a listener for the host and publishes its port",
      host and ports, (adv, k.get("ports")))
check("the host listener is a listener with a protocol",
      host and ("%s://:%s" % (host.group(1), host.group(2))) in env.get("KAFKA_LISTENERS", "")
      and host.group(1) + ":" in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", ""))
workers = {s: v for s, v in c.items() if (v.get("command") or [""])[0] in ("fetch", "transform")}
check("there are fetchers and a transformer", len(workers) >= 4, sorted(workers))
for s, v in sorted(workers.items()):
    deps = v.get("depends_on", {})
    check("%s does not wait for postgres" % s, "postgres" not in deps and "topic-init" in deps, deps)
check("the loader waits for postgres", "postgres" in c["loader"].get("depends_on", {}))
check("the transformer runs the directory of bundled maps",
      c["transformer"]["command"] == ["transform", "maps"], c["transformer"]["command"])
tl = c.get("topic-list", {})
script = " ".join(tl.get("entrypoint") or []) + " " + " ".join(tl.get("command") or [])
check("topic-list lists the topics of the bundled sources and maps",
      "lint --topics sources maps" in script, script)
ti = c.get("topic-init", {})
check("topic-init waits for topic-list and runs deploy/topic-init.sh on its list",
      ti.get("depends_on", {}).get("topic-list", {}).get("condition") == "service_completed_successfully"
      and any(split(v)[0].endswith("deploy/topic-init.sh") for v in ti.get("volumes", [])),
      ti)
g = c.get("grafana", {})
check("grafana has a health check on /api/health", "/api/health" in str(g.get("healthcheck", {}).get("test")))
cli = c.get("cli", {})
check("a cli service runs the image's sluice for status and replay",
      cli and "tools" in cli.get("profiles", []) and cli.get("build"))
PY
grep -q 'docker compose run --rm cli replay' README.md docs/operations.md
check_eq "README or docs/operations.md show replay through docker compose run" "$?" 0
check_eq "the image exposes the workers' metrics port" \
	"$(grep -oE '^EXPOSE [0-9]+' Dockerfile)" "EXPOSE $(grep -oE 'SLUICE_HTTP_PORT: [0-9]+' docker-compose.yml | grep -oE '[0-9]+')"
check "the image carries its version as a label" grep -q 'org.opencontainers.image.version="\$VERSION"' Dockerfile
for p in .git build build-check; do
	check ".dockerignore leaves $p out of the build context" grep -qx -e "$p" -e "${p%%-*}-\*" .dockerignore
done

# topic-init.sh, run on the list `sluice lint --topics` makes of the bundled
# files, against a kafka-topics.sh that records what it is asked
cat >"$d/kafka-topics.sh" <<'SH'
#!/bin/sh
echo "$*" >>"$TOPICS_LOG"
SH
chmod +x "$d/kafka-topics.sh"
"$SLUICE_BIN" lint --topics producers/sources transformers/maps | sort -u >"$d/list"
check_eq "sluice lint --topics exits 0 on the bundled files" "${PIPESTATUS[0]}" 0
python3 - producers/sources transformers/maps >"$d/want" <<'PY'
import glob, json, sys
topics = set()
for f in glob.glob(sys.argv[1] + "/*.json"):
    topics.add("raw." + json.load(open(f))["name"])
def tables(t):
    for x in t:
        topics.add("mapped." + x["table"])
        tables(x.get("children", []))
for f in glob.glob(sys.argv[2] + "/*.json"):
    m = json.load(open(f))
    topics.add("raw." + m["source"])
    tables(m.get("targets", [m] if "table" in m else []))
print("\n".join(sorted(topics)))
PY
check_eq "the topic list is every raw.<source> and mapped.<table> of the bundled files" \
	"$(cat "$d/list")" "$(cat "$d/want")"
check "the list names raw.nvd and mapped.vulnerability_cpe_match" \
	grep -qx -e raw.nvd "$d/list"
TOPICS_LOG=$d/calls KAFKA_TOPICS=$d/kafka-topics.sh KAFKA_BOOTSTRAP=k:1 \
	bash deploy/topic-init.sh "$d/list" >"$d/init.out" 2>&1
check_eq "topic-init.sh exits 0" "$?" 0
export TOPICS_LOG=$d/calls
check_eq "topic-init.sh creates each listed topic and the 6 of its own" \
	"$(grep -c -- '--create --if-not-exists' "$d/calls")" "$(($(wc -l <"$d/list") + 6))"
check "raw.nvd is kept forever, with 8 partitions" \
	grep -qx -- '--bootstrap-server k:1 --create --if-not-exists --topic raw.nvd --partitions 8 --config retention.ms=-1 --config max.message.bytes=4194304' "$d/calls"
check "mapped.vulnerability_cpe_match is created" \
	grep -q -- '--topic mapped.vulnerability_cpe_match --partitions 8' "$d/calls"
check "sluice.state is compacted" grep -q -- '--topic sluice.state --partitions 1 --config cleanup.policy=compact' "$d/calls"
check "sluice.data_loss has 1 partition, kept forever" \
	grep -q -- '--topic sluice.data_loss --partitions 1 --config retention.ms=-1' "$d/calls"
: >"$d/empty"
if KAFKA_TOPICS=$d/kafka-topics.sh bash deploy/topic-init.sh "$d/empty" >/dev/null 2>&1; then
	not_ok "topic-init.sh refuses an empty list"
else
	ok "topic-init.sh refuses an empty list"
fi
# one place to add a source: a new source and map are all it takes
mkdir -p "$d/src" "$d/maps"
cp producers/sources/kev.json "$d/src/"
cp transformers/maps/kev.json "$d/maps/"
sed 's/"name": "kev"/"name": "kev2"/' producers/sources/kev.json >"$d/src/kev2.json"
sed -e 's/"source": "kev"/"source": "kev2"/' -e 's/"name": "kev"/"name": "kev2"/' \
	-e 's/"known_exploited_vulnerability"/"kev2_row"/' transformers/maps/kev.json >"$d/maps/kev2.json"
"$SLUICE_BIN" lint --topics "$d/src" "$d/maps" | sort -u >"$d/list2"
check "a new source's raw topic joins the list" grep -qx raw.kev2 "$d/list2"
check "a new map's table topic joins the list" grep -qx mapped.kev2_row "$d/list2"
# the transformer's directory argument: every *.json of it is a map (one
# bad map in it is refused, by its own name)
echo '{"name": "bad"}' >"$d/maps/zz_bad.json"
"$SLUICE_BIN" transform "$d/maps" >"$d/tr.out" 2>&1
check_eq "transform DIR loads each map in it, refusing a bad one" "$?" 2
check "the refusal names the bad map's file" grep -q zz_bad.json "$d/tr.out"
mkdir -p "$d/nomaps"
"$SLUICE_BIN" transform "$d/nomaps" >"$d/tr2.out" 2>&1
check_eq "transform on a directory without maps is bad usage" "$?" 2
check "the Dockerfile builds on Debian 12 and runs on slim" grep -q '^FROM debian:12-slim' Dockerfile
# make up / make down: the stack through the compose tool (COMPOSE, here a
# script that records what it is asked), and the environment to export
cat >"$d/compose" <<'SH'
#!/bin/sh
echo "$* version=$SLUICE_VERSION" >>"$COMPOSE_LOG"
exit "${COMPOSE_RC:-0}"
SH
chmod +x "$d/compose"
export COMPOSE_LOG=$d/compose.log
make -s up COMPOSE="$d/compose" SLUICE_VERSION=v9.9-test >"$d/up.out" 2>&1
check_eq "make up exits 0" "$?" 0
check_eq "make up starts the stack detached, building the image with the version" \
	"$(cat "$COMPOSE_LOG")" "-f docker-compose.yml up -d --build version=v9.9-test"
# the printed exports, evaluated, reach the stack's host ports and user
exports=$(sed -n '/^  export /,/^  [^ ]/p' "$d/up.out" | sed '$d' | tr -d '\\')
got=$(env -i PATH="$PATH" bash -c "$exports"'
echo "$SLUICE_BROKERS $PGHOST:$PGPORT $PGUSER/$PGPASSWORD@$PGDATABASE"')
check_eq "make up prints the environment that reaches the stack from the host" \
	"$got" "localhost:29092 localhost:5432 sluice/sluice@sluice"
python3 - "$d/config.yml" "$got" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]
brokers, pg, cred = sys.argv[2].split()
def ports(s):
    return [str(p.get("published")) if isinstance(p, dict) else str(p).split(":")[-2]
            for p in c[s].get("ports", [])]
ok = brokers.split(":")[1] in ports("kafka") and pg.split(":")[1] in ports("postgres")
print(("ok - " if ok else "not ok - ") + "the printed ports are the ones the compose file publishes (%s, %s)"
      % (ports("kafka"), ports("postgres")))
e = c["postgres"]["environment"]
ok = cred == "%s/%s@%s" % (e["POSTGRES_USER"], e["POSTGRES_PASSWORD"], e["POSTGRES_DB"])
print(("ok - " if ok else "not ok - ") + "the printed user, password and database are postgres's")
PY
: >"$COMPOSE_LOG"
make -s down COMPOSE="$d/compose" >"$d/down.out" 2>&1
check_eq "make down exits 0" "$?" 0
check_eq "make down stops the stack and keeps its volumes" "$(cat "$COMPOSE_LOG")" "-f docker-compose.yml down version="
if COMPOSE_RC=1 make -s up COMPOSE="$d/compose" >/dev/null 2>&1; then
	not_ok "make up fails when the compose tool does"
else
	ok "make up fails when the compose tool does"
fi
# the validator can fail: a broken file is refused
sed 's/^services:/servicez:/' docker-compose.yml >"$d/broken.yml"
if docker-compose -f "$d/broken.yml" config -q >/dev/null 2>&1; then
	not_ok "a broken compose file is refused"
else
	ok "a broken compose file is refused"
fi
sl_done
