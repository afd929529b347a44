#!/usr/bin/env bash
# gpu-smoke: on a machine with an NVIDIA GPU, start a one-node local site that owns the host's
# GPUs, run the demo through Slurm on the GPU and on the CPU, and check that two concurrent
# 1-GPU jobs get different GPUs. Prints the GPU name, time per epoch GPU vs CPU and whether
# CUDA_VISIBLE_DEVICES isolation held. Stops at once, exit 1, on a machine without a GPU.
#
# Usage: scripts/gpu-smoke.sh [--keep]      (--keep: leave the cluster running and its files)
# Environment:
#   HPCSTACK        the hpcstack command (default: `hpcstack` on PATH, else this checkout's)
#   GPU_SMOKE_NET   first two octets of the two site subnets (default 172.30)
# Results go to stdout, progress to stderr. See docs/gpu.md.
set -euo pipefail

keep=0
[[ ${1:-} == --keep ]] && keep=1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
net=${GPU_SMOKE_NET:-172.30}

say() { printf 'gpu-smoke: %s\n' "$*" >&2; }
die() {
  printf 'gpu-smoke: FAILED: %s\n' "$*" >&2
  exit 1
}

# --- prerequisites: fail fast, before anything is started ---------------------------------------
command -v nvidia-smi >/dev/null 2>&1 ||
  die "no NVIDIA driver: nvidia-smi not found (install the NVIDIA driver, see docs/gpu.md; 'hpcstack doctor' prints the fix)"
if ! gpu_list=$(nvidia-smi --query-gpu=index,name --format=csv,noheader 2>&1); then
  die "nvidia-smi failed: ${gpu_list//$'\n'/ }"
fi
[[ -n $gpu_list && $gpu_list != *"No devices were found"* ]] || die "nvidia-smi found no GPU"
gpu_count=$(grep -c . <<<"$gpu_list")
gpu_name=$(head -n1 <<<"$gpu_list" | cut -d, -f2- | sed 's/^ *//')

command -v docker >/dev/null 2>&1 || die "docker not found (sudo apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (sudo systemctl start docker)"
if docker info --format '{{json .Runtimes}}' | grep -q '"nvidia"'; then
  gpu_runtime=nvidia
elif compgen -G '/etc/cdi/*.yaml' >/dev/null || compgen -G '/etc/cdi/*.json' >/dev/null ||
  compgen -G '/var/run/cdi/*.yaml' >/dev/null || compgen -G '/var/run/cdi/*.json' >/dev/null; then
  gpu_runtime=cdi
else
  die 'NVIDIA container toolkit missing: no docker runtime "nvidia" and no CDI spec (see docs/gpu.md)'
fi

if [[ -n ${HPCSTACK:-} ]]; then
  read -r -a hpcstack <<<"$HPCSTACK"
elif command -v hpcstack >/dev/null 2>&1; then
  hpcstack=(hpcstack)
else
  export PYTHONPATH="$repo/generator${PYTHONPATH:+:$PYTHONPATH}"
  hpcstack=(python3 -m hpcstack.cli.main)
fi
say "$gpu_count GPU(s), first: $gpu_name; containers get GPUs through $gpu_runtime"

# --- a one-node local site with every GPU of this host ------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-smoke.XXXXXX")
out="$work/out"
started=0
cleanup() {
  if ((keep)); then
    say "kept: $out (stop it with: cd $out && ${hpcstack[*]} down --volumes)"
    return
  fi
  if ((started)); then
    (cd "$out" && "${hpcstack[@]}" down --volumes >&2) || say "down failed; see $out"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cpus=$(nproc)
((cpus > 8)) && cpus=8
cat >"$work/stack.yaml" <<YAML
cluster:
  name: gpusmoke
monitoring:
  enabled: false
tunnel:
  subnet: 10.98.0.0/16
  port: 51830
sites:
  - name: cloud
    role: cloud
    subnet: $net.0.0/24
  - name: local
    role: local
    subnet: $net.1.0/24
    gpu_runtime: $gpu_runtime
    nodes:
      - name: gpu1
        cpus: $cpus
        memory_mb: 4096
        gpus: auto
        features: [gpu]
YAML

hs() { "${hpcstack[@]}" "$@"; }
on_controller() { (cd "$out" && hs exec -- "$@"); }

say "generate and start (the first run builds the GPU image: PyTorch with CUDA, a few GB)"
hs generate -c "$work/stack.yaml" -o "$out" >&2
started=1
(cd "$out" && hs up >&2)

say "waiting for gpu1 to be idle in Slurm"
for _ in $(seq 60); do
  state=$(on_controller sinfo -h -n gpu1 -o '%T %G' 2>/dev/null || true)
  [[ $state == idle* ]] && break
  sleep 3
done
[[ $state == idle* ]] || die "gpu1 did not become idle (sinfo: ${state:-no answer})"
gres=${state#idle }

# --- the demo on the GPU and on the CPU ---------------------------------------------------------
demo=(srun -N1 -n1 --mem=2048 python3 /opt/hpcstack/demo/sweep.py)
mean_ms() { awk -F'\t' '$1 == "RESULT" { s += $9; n++ } END { if (n) printf "%.2f", s / n }'; }
say "demo with --gres=gpu:1"
gpu_out=$(on_controller "${demo[0]}" --gres=gpu:1 "${demo[@]:1}")
gpu_device=$(awk -F'\t' '$1 == "RESULT" { print $5; exit }' <<<"$gpu_out")
[[ $gpu_device == gpu:* ]] || die "the 1-GPU job did not use a GPU (device: ${gpu_device:-none}); output: $gpu_out"
say "demo without a GPU"
# A job without --gres inherits the submitter's environment: hide the GPUs from CUDA explicitly.
cpu_out=$(on_controller env CUDA_VISIBLE_DEVICES= "${demo[@]}")
cpu_device=$(awk -F'\t' '$1 == "RESULT" { print $5; exit }' <<<"$cpu_out")
[[ $cpu_device == cpu ]] || die "the CPU job did not run on the CPU (device: ${cpu_device:-none})"
gpu_ms=$(mean_ms <<<"$gpu_out")
cpu_ms=$(mean_ms <<<"$cpu_out")

# --- isolation: two concurrent 1-GPU jobs must get different GPUs -------------------------------
# shellcheck disable=SC2016  # expanded by the job's shell on gpu1, not here
probe='echo "$CUDA_VISIBLE_DEVICES $(python3 -c "import torch; print(torch.cuda.get_device_properties(0).uuid)")"; sleep 15'
if ((gpu_count >= 2)); then
  say "two concurrent 1-GPU jobs"
  on_controller srun -N1 -n1 --mem=512 --gres=gpu:1 bash -c "$probe" >"$work/job-a" &
  job_a=$!
  on_controller srun -N1 -n1 --mem=512 --gres=gpu:1 bash -c "$probe" >"$work/job-b" &
  job_b=$!
  wait "$job_a" || die "isolation job a failed"
  wait "$job_b" || die "isolation job b failed"
  read -r cvd_a uuid_a <"$work/job-a"
  read -r cvd_b uuid_b <"$work/job-b"
  if [[ -n $cvd_a && -n $cvd_b && $cvd_a != *,* && $cvd_a != "$cvd_b" && $uuid_a != "$uuid_b" ]]; then
    isolation="held: CUDA_VISIBLE_DEVICES=$cvd_a ($uuid_a) and $cvd_b ($uuid_b)"
  else
    isolation="FAILED: CUDA_VISIBLE_DEVICES=$cvd_a ($uuid_a) and $cvd_b ($uuid_b)"
  fi
else
  isolation="not tested: needs 2 GPUs, this host has $gpu_count"
fi

printf 'GPU:             %s (%s GPU(s) on this host; Slurm sees %s)\n' "$gpu_name" "$gpu_count" "$gres"
printf 'time per epoch:  GPU %s ms (%s), CPU %s ms\n' "$gpu_ms" "${gpu_device#gpu:}" "$cpu_ms"
printf 'isolation:       %s\n' "$isolation"
[[ $isolation != FAILED* ]] || exit 1
