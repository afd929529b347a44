"""A Slurm exporter for Prometheus: what Slurm's native /metrics endpoint lacks.

Runs inside the controller image with the standard library, prometheus_client and (when
installed) msgspec, so it imports nothing else from hpcstack. One collection per cycle:
`scontrol show nodes --json`, `squeue --json` and `sdiag --json` run once each and every metric
is derived from their output.
Names match Slurm 26.05's native endpoint (MetricsType=metrics/openmetrics) where they overlap.
"""
