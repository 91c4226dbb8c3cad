#!/usr/bin/env bash
# tests/fuzz/build.sh MODE OUTDIR LIB: compiles every fuzz target in
# tests/fuzz/ against LIB (a libsluice.a) into OUTDIR.
#   MODE=fuzz    clang with libFuzzer, ASan and UBSan (LIB built with
#                -fsanitize=fuzzer-no-link, see run.sh)
#   MODE=replay  $CC (default cc) with replay_main.c instead of libFuzzer;
#                FUZZ_SAN=1 adds ASan and UBSan (for a sanitized LIB)
# BUILD_JOBS (default 1) targets compile at once.
set -eu
MODE=$1 OUT=$2 LIB=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PKGS="rdkafka libcurl jansson libpq libmicrohttpd libxml-2.0 lua5.4"
# shellcheck disable=SC2046
CPP="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I$ROOT/tests/fuzz \
 -I$ROOT/common -I$ROOT/cli -I$ROOT/producers -I$ROOT/transformers \
 -I$ROOT/loaders $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread -lm"
WARN="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror"
mkdir -p "$OUT"
# build_one NAME SRC
build_one() {
	local name=$1 src=$2
	case $MODE in
	fuzz)
		# shellcheck disable=SC2086
		clang $CPP $WARN -O1 -g -fno-omit-frame-pointer \
			-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
			-o "$OUT/$name" "$src" "$ROOT/tests/fuzz/fuzz_util.c" \
			"$LIB" $LIBS ;;
	replay)
		san=""
		[ "${FUZZ_SAN:-0}" = 1 ] && san="-fsanitize=address,undefined -fno-omit-frame-pointer"
		# shellcheck disable=SC2086
		${CC:-cc} $CPP $WARN -O1 -g $san -o "$OUT/$name" "$src" \
			"$ROOT/tests/fuzz/fuzz_util.c" "$ROOT/tests/fuzz/replay_main.c" \
			"$LIB" $LIBS ;;
	*) echo "build.sh: MODE is fuzz or replay" >&2; exit 2 ;;
	esac
}
jobs=${BUILD_JOBS:-1} running=0 failed=0
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	[ "$name" = fuzz_util ] && continue
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
	build_one "$name" "$src" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
exit $failed
