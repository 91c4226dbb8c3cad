#!/usr/bin/env bash
# A short KEV pipeline with fetch, transform and load under valgrind
# memcheck: no errors, no definite leaks (tests/valgrind/run.sh).
exec bash "$SLUICE_ROOT/tests/valgrind/run.sh" "${SLUICE_BUILD:-build}"
