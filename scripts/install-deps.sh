#!/usr/bin/env bash
# Installs the Debian 12 packages sluice needs to build, test and run the
# demo, and only those that are missing (so a second call is instant).
set -euo pipefail
pkgs=(gcc make pkg-config ca-certificates curl procps iproute2
      librdkafka-dev libcurl4-openssl-dev libjansson-dev libpq-dev
      libmicrohttpd-dev libxml2-dev liblua5.4-dev postgresql postgresql-client python3 python3-jsonschema
      kafkacat jq docker-compose clang clang-format valgrind openssl
      python3-confluent-kafka python3-psycopg2 gnuplot-nox time) # make bench
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || {
		echo "install-deps: missing packages (${missing[*]}) and no sudo: install them as root" >&2
		exit 1
	}
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2 || true
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
