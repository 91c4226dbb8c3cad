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
for f in $(grep -oE '"(sources|maps)/[a-z0-9_]+\.json"' docker-compose.yml | tr -d '"' | sort -u); do
	case $f in
	sources/*) p=producers/$f ;;
	maps/*) p=transformers/$f ;;
	esac
	check "compose runs $f, which exists as $p" test -f "$p"
done
check "the Dockerfile builds on Debian 12 and runs on slim" grep -q '^FROM debian:12-slim' Dockerfile
# the validator can fail: a broken file is refused
sed 's/^services:/servicez:/' docker-compose.yml >"$d/broken.yml"
if docker-compose -f "$d/broken.yml" config -q >/dev/null 2>&1; then
	not_ok "a broken compose file is refused"
else
	ok "a broken compose file is refused"
fi
sl_done
