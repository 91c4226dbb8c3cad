#!/usr/bin/env bash
# Kafka TLS and SASL settings pass through to librdkafka unchanged. The
# embedded broker (librdkafka 2.0.2's mock cluster) speaks only PLAINTEXT
# and has no SASL, so no TLS or SASL handshake can succeed here; what is
# proven instead (docs/security.md says so):
#  - invalid values, from --kafka or SLUICE_KAFKA_*, are refused by
#    librdkafka's own checks, whose errors name the property (and never
#    echo a value);
#  - SASL_SSL with sasl.mechanisms, sasl.username, sasl.password (from the
#    environment) and ssl.ca.location reaches librdkafka: its configuration
#    dump (debug=all) shows each, the password as [redacted];
#  - a transformer and a loader so configured against the plaintext broker
#    exit 1 (no hang) with an error that names the brokers and the failed
#    TLS handshake; SASL_PLAINTEXT fails on the broker's missing SASL;
#  - the password (a canary) appears in no output, at SLUICE_LOG_LEVEL=debug
#    with librdkafka's debug=all.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
CANARY=SECRET-kafka-canary-456
MAP=$SLUICE_ROOT/transformers/maps/kev.json

broker_start || { not_ok "broker"; exit 1; }
new_db kafka_tls || { not_ok "database"; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kafka test CA" \
	-keyout "$D/ca.key" -out "$D/ca.pem" >/dev/null 2>&1 || { not_ok "openssl"; exit 1; }

# refused NAME WANT [VAR=VALUE...] -- ARGS...: `sluice transform MAP ARGS`
# with the variables fails (exit 1, not a timeout) saying WANT
refused() {
	local name=$1 want=$2 vars=() rc
	shift 2
	while [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	env "${vars[@]}" timeout 60 "$SLUICE_BIN" transform "$MAP" "$@" \
		>"$D/$name.out" 2>"$D/$name.log"
	rc=$?
	check_eq "$name: exit 1" "$rc" 1
	grep -qF -- "$want" "$D/$name.log" && ok "$name: says '$want'" ||
		not_ok "$name: want '$want', got: $(grep -m1 event=failed "$D/$name.log")"
}

# --- 1. invalid values: librdkafka's own errors, naming the property ---------
# (the log line quotes the message: its quotes show as \")
refused bad_protocol_flag 'kafka property security.protocol: Invalid value \"BOGUS\"' \
	-- --kafka security.protocol=BOGUS
refused bad_protocol_env 'kafka property security.protocol: Invalid value \"bogus\"' \
	SLUICE_KAFKA_SECURITY_PROTOCOL=bogus --
refused bad_mechanism 'Unsupported SASL mechanism: BOGUS' \
	SLUICE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT SLUICE_KAFKA_SASL_MECHANISM=BOGUS --
refused bad_ca 'ssl.ca.location failed' \
	SLUICE_KAFKA_SECURITY_PROTOCOL=SSL SLUICE_KAFKA_SSL_CA_LOCATION="$D/missing.pem" --
# a misspelt property is refused without echoing its (secret) value
refused bad_name 'kafka property sasl.pasword: No such configuration property' \
	-- --kafka "sasl.pasword=$CANARY"

# --- 2. SASL_SSL from the environment, against the plaintext broker ----------
SASL_ENV=(SLUICE_LOG_LEVEL=debug SLUICE_KAFKA_SECURITY_PROTOCOL=SASL_SSL
	SLUICE_KAFKA_SASL_MECHANISMS=SCRAM-SHA-512 SLUICE_KAFKA_SASL_USERNAME=sluice-user
	SLUICE_KAFKA_SASL_PASSWORD="$CANARY" SLUICE_KAFKA_SSL_CA_LOCATION="$D/ca.pem")
# the three workers each wait out their 10 s broker check: run them at once
env "${SASL_ENV[@]}" timeout 60 "$SLUICE_BIN" transform "$MAP" --kafka debug=all \
	>"$D/sasl_ssl_transform.out" 2>"$D/sasl_ssl_transform.log" &
T=$!
env "${SASL_ENV[@]}" timeout 60 "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" \
	--kafka debug=all >"$D/sasl_ssl_load.out" 2>"$D/sasl_ssl_load.log" &
L=$!
env SLUICE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT SLUICE_KAFKA_SASL_MECHANISMS=PLAIN \
	SLUICE_KAFKA_SASL_USERNAME=sluice-user SLUICE_KAFKA_SASL_PASSWORD="$CANARY" \
	timeout 60 "$SLUICE_BIN" transform "$MAP" \
	>"$D/sasl_plain.out" 2>"$D/sasl_plain.log" &
P=$!
SL_PIDS+=("$T" "$L" "$P")
wait "$T"
check_eq "SASL_SSL: the transformer gives up (exit 1, no hang)" "$?" 1
wait "$L"
check_eq "SASL_SSL: the loader gives up (exit 1, no hang)" "$?" 1
wait "$P"
check_eq "SASL_PLAINTEXT: the transformer gives up (exit 1, no hang)" "$?" 1

conf=$(grep -ho 'security\.protocol = [a-z_]*\|sasl\.mechanisms = [A-Z0-9-]*\|sasl\.username = [^ "]*\|sasl\.password = [^ "]*\|ssl\.ca\.location = [^ "]*' \
	"$D/sasl_ssl_transform.log" | sort -u | tr '\n' ';')
check_eq "SASL_SSL: every property reached librdkafka (its debug=all dump)" "$conf" \
	"sasl.mechanisms = SCRAM-SHA-512;sasl.password = [redacted];sasl.username = [redacted];security.protocol = sasl_ssl;ssl.ca.location = $D/ca.pem;"
# the last failure librdkafka logged: "SSL handshake failed: ..." or
# "Disconnected (after 0ms in state SSL_HANDSHAKE)"
for w in transform load; do
	grep -q "could not reach kafka brokers $SLUICE_BROKERS: .*(last: sasl_ssl://.*SSL.HANDSHAKE" "$D/sasl_ssl_$w.log" ||
		grep -q "could not reach kafka brokers $SLUICE_BROKERS: .*(last: sasl_ssl://.*SSL handshake failed" "$D/sasl_ssl_$w.log" &&
		ok "SASL_SSL: the $w's error names the brokers and the failed TLS handshake" ||
		not_ok "SASL_SSL: $w: $(grep -m1 'could not reach\|event=failed' "$D/sasl_ssl_$w.log")"
done
grep -q "could not reach kafka brokers .*SASL Handshake not supported by broker" "$D/sasl_plain.log" &&
	ok "SASL_PLAINTEXT: the error says the broker has no SASL" ||
	not_ok "SASL_PLAINTEXT: $(grep -m1 event=failed "$D/sasl_plain.log")"
check "SASL_SSL: debug logs were on" grep -q 'level=debug' "$D/sasl_ssl_transform.log"

leaks=$(grep -l -- "$CANARY" "$D"/*.out "$D"/*.log 2>/dev/null)
check_eq "the password appears in no output or log" "$leaks" ""
sl_done
