#!/bin/bash
# hpcstack demo, run on the controller: a hyper-parameter sweep split over the compute nodes
# with srun; each task's results stream back here and are printed as one table.
# Usage: run-demo.sh [NODES] [TASKS] [extra srun options...]
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh
nodes=${1:-2}
tasks=${2:-$((nodes * 2))}
shift $(( $# > 2 ? 2 : $# ))
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "hpcstack demo: sweeping 8 settings of a neural network on the digits data set"
# A shared-filesystem client has HPCSTACK_FS_SERVER (compose_fs.py); without one, /shared is a
# per-host volume that the nodes on other hosts do not see.
if [ -n "${HPCSTACK_FS_SERVER:-}" ] && mountpoint -q "$HPCSTACK_SHARED_DIR" 2>/dev/null; then
  # The lab's flow: the data set on the shared filesystem, each task writes its results file
  # there, and the table is made here from those files.
  area="$HPCSTACK_SHARED_DIR/demo-$(id -un)"
  install -d -m 0755 "$area"
  [ -s "$area/digits.txt" ] || install -m 0644 "$HPCSTACK_DEMO_DIR/digits.txt" "$area/digits.txt"
  export HPCSTACK_DEMO_DATA="$area/digits.txt"
  HPCSTACK_DEMO_RESULTS=$(mktemp -d "$area/results-$(date -u +%Y%m%dT%H%M%S)-XXXX")
  export HPCSTACK_DEMO_RESULTS
  echo "  data: $HPCSTACK_DEMO_DATA; results: $HPCSTACK_DEMO_RESULTS/ (shared filesystem)"
fi
echo "  submitting: srun -N$nodes -n$tasks $* (from $(hostname))"
start=$(date +%s.%N)
srun --job-name=hpcstack-demo --nodes="$nodes" --ntasks="$tasks" --kill-on-bad-exit=1 "$@" \
  python3 "$HPCSTACK_DEMO_DIR/sweep.py" >"$out"
end=$(date +%s.%N)
if [ -n "${HPCSTACK_DEMO_RESULTS:-}" ]; then
  files=("$HPCSTACK_DEMO_RESULTS"/task-*.tsv)
  [ -e "${files[0]}" ] || { echo "demo: no results file in $HPCSTACK_DEMO_RESULTS" >&2; cat "$out" >&2; exit 1; }
  echo "  read ${#files[@]} results file(s) written by the tasks on the nodes"
  cat "${files[@]}" >"$out"
fi
grep -c '^RESULT' "$out" >/dev/null || { echo "demo: no results came back" >&2; cat "$out" >&2; exit 1; }
echo
awk -F'\t' -v secs="$(echo "$end - $start" | awk '{print $1 - $3}')" '
  BEGIN { printf "%-7s %-5s %-10s %-14s %7s %7s %9s %10s\n", "job", "task", "node", "device", "hidden", "alpha", "accuracy", "ms/epoch" }
  $1 == "RESULT" {
    printf "%-7s %-5s %-10s %-14s %7s %7s %9s %10s\n", $2, $3, $4, substr($5, 1, 14), $6, $7, $8, $9
    n++; if ($8 > best) { best = $8; bh = $6; ba = $7 }; nodes[$4] = 1
  }
  END {
    k = 0; for (x in nodes) k++
    printf "\n%d settings trained on %d node(s) in %.1f s; best accuracy %.4f (hidden=%s, alpha=%s)\n", n, k, secs, best, bh, ba
  }' < <(grep '^RESULT' "$out" | sort -t "$(printf '\t')" -k6,6n -k7,7g)
