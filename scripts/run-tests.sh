#!/usr/bin/env bash
# `make test`: every test, in two pytest processes side by side (docs/decisions/0012).
#   engine-bound (marked docker, multihost or netns): one after another, in file order, as a
#     serial run would; two end-to-end clusters never run at once.
#   the unit tests: meanwhile, in the other process; their report is printed after.
# TEST_PARALLEL=0 runs everything in one process. Arguments go to both (e.g. -p no:cacheprovider,
# or test paths: a half that then selects nothing counts as passed if the other ran tests).
set -uo pipefail
PY=${PY:-.venv/bin/python}
ENGINE="docker or multihost or netns"

if [ "${TEST_PARALLEL:-1}" = 0 ]; then
  exec "$PY" -m pytest "$@"
fi

unit_log=$(mktemp)
trap 'rm -f "$unit_log"' EXIT
"$PY" -m pytest -m "not ($ENGINE)" "$@" >"$unit_log" 2>&1 &
unit_pid=$!
trap 'kill "$unit_pid" 2>/dev/null; rm -f "$unit_log"' INT TERM

echo "== engine-bound tests (the unit tests run meanwhile; their report follows)"
"$PY" -m pytest -m "$ENGINE" "$@"
engine_rc=$?
wait "$unit_pid"
unit_rc=$?

echo
echo "== unit tests"
cat "$unit_log"

# pytest's 5: nothing selected in this half
if [ "$engine_rc" = 5 ] && [ "$unit_rc" = 5 ]; then exit 5; fi
[ "$engine_rc" = 5 ] && engine_rc=0
[ "$unit_rc" = 5 ] && unit_rc=0
echo
echo "== make test: engine-bound tests exit $engine_rc, unit tests exit $unit_rc"
[ "$engine_rc" = 0 ] && [ "$unit_rc" = 0 ]
