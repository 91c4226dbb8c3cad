#!/usr/bin/env bash
# topic-init.sh LIST: creates the topics sluice needs on a real Kafka, with
# the partitions the workers scale to. LIST holds one topic a line, as
# `sluice lint --topics sources maps` prints them (the compose stack's
# topic-list service writes it from the bundled source definitions and
# maps, so a new source needs no edit here); the dead-letter, state, lock
# and data-loss topics are added here.
#
#   KAFKA_TOPICS      the kafka-topics.sh to run (default: the apache/kafka
#                     image's /opt/kafka/bin/kafka-topics.sh)
#   KAFKA_BOOTSTRAP   bootstrap servers (default kafka:9092)
#   TOPIC_PARTITIONS  partitions of raw.* and mapped.* (default 8)
set -euo pipefail
list=${1:?usage: topic-init.sh TOPIC-LIST}
k=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}
bs=${KAFKA_BOOTSTRAP:-kafka:9092}
parts=${TOPIC_PARTITIONS:-8}

create() {
	echo "topic-init: $*"
	"$k" --bootstrap-server "$bs" --create --if-not-exists --topic "$@"
}

n=0
while read -r t; do
	case $t in
	'' | '#'*) continue ;;
	# raw topics are the system of record: kept forever, so that
	# `sluice replay` can re-run transforms from any point
	raw.*) create "$t" --partitions "$parts" --config retention.ms=-1 \
		--config max.message.bytes=4194304 ;;
	mapped.*) create "$t" --partitions "$parts" --config retention.ms=604800000 ;;
	*)
		echo "topic-init: $list: unexpected topic \"$t\"" >&2
		exit 1
		;;
	esac
	n=$((n + 1))
done <"$list"
if [ "$n" -eq 0 ]; then
	echo "topic-init: $list lists no topic" >&2
	exit 1
fi
for t in dlq.fetch dlq.transform dlq.load; do
	create "$t" --partitions 1 --config retention.ms=-1
done
create sluice.state --partitions 1 --config cleanup.policy=compact
# one partition: whoever holds it owns a source's sync (stand-by)
create sluice.fetch_lock --partitions 1
# one partition, kept forever: the record of messages lost to retention
# (sluice status lists them; --ack-loss commits past them)
create sluice.data_loss --partitions 1 --config retention.ms=-1
