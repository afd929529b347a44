"""A Slurm exporter for Prometheus: what Slurm's native /metrics endpoint lacks.

Runs inside the controller image with only the standard library and prometheus_client, so it
imports nothing else from hpcstack. One collection per cycle: `scontrol show nodes --json`,
`squeue --json` and `sdiag --json` run once each and every metric is derived from their output.
Names match Slurm 26.05's native endpoint (MetricsType=metrics/openmetrics) where they overlap.
"""
