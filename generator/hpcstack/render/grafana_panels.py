"""The dashboards' panels as data: four dashboards, each a tuple of PanelSpec (title, kind,
PromQL). `grafana.py` turns them into Grafana JSON; `tests/test_monitoring.py` checks every
query returns series from a live Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass

# node_exporter filesystems worth showing (pseudo and container layers left out).
REAL_FS = 'fstype!~"tmpfs|overlay|squashfs|nsfs|ramfs|proc|sysfs"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class PanelSpec:
    kind: str  # stat, timeseries, table, bargauge
    title: str
    queries: tuple[Query, ...]
    unit: str = ""
    width: int = 8
    height: int = 8
    description: str = ""


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


CLUSTER = (
    PanelSpec(
        "stat",
        "Nodes by state",
        (q("count by (state) (slurm_node_state == 1)", "{{state}}"),),
        width=8,
        height=5,
    ),
    PanelSpec(
        "stat", "Jobs running", (q("max(slurm_jobs_running) or vector(0)"),), width=4, height=5
    ),
    PanelSpec(
        "stat", "Jobs pending", (q("max(slurm_jobs_pending) or vector(0)"),), width=4, height=5
    ),
    PanelSpec(
        "stat",
        "Longest drain",
        (q("max(time() - slurm_node_drain_since_seconds) or vector(0)"),),
        unit="s",
        width=8,
        height=5,
        description="Time since the oldest drain or down reason was set.",
    ),
    PanelSpec(
        "timeseries",
        "Jobs",
        (
            q("max(slurm_jobs_running) or vector(0)", "running"),
            q("max(slurm_jobs_pending) or vector(0)", "pending"),
        ),
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "CPU and GPU allocation",
        (
            q(
                "sum(max by (node) (slurm_node_cpus_alloc)) / sum(max by (node) (slurm_node_cpus))",
                "CPUs",
            ),
            q(
                "(sum(max by (node) (slurm_node_gpus_alloc)) / sum(max by (node) (slurm_node_gpus)) > 0)"  # noqa: E501
                " or vector(0)",
                "GPUs",
            ),
        ),
        unit="percentunit",
        width=12,
    ),
    PanelSpec(
        "bargauge",
        "Pending jobs by reason",
        (
            q(
                "sum by (reason) (slurm_jobs_pending_by_reason) or vector(0)",
                "{{reason}}",
                instant=True,
            ),
        ),
        width=8,
    ),
    PanelSpec(
        "table",
        "Problem nodes",
        (
            q(
                'max by (node, state, reason) (slurm_node_state{state=~"down|drained|draining|fail|'
                'unknown|maint|reboot_requested"}) or on () vector(0)',
                instant=True,
            ),
        ),
        width=16,
        description="Down, drained and draining nodes with the reason Slurm gives.",
    ),
    PanelSpec(
        "table",
        "Allocation per node",
        (
            q("max by (node) (slurm_node_cpus_alloc)", "CPUs allocated", instant=True),
            q("max by (node) (slurm_node_gpus_alloc)", "GPUs allocated", instant=True),
            # a node with no job shows 0, not a gap
            q(
                "count by (node) (slurm_node_job) or 0 * max by (node) (slurm_node_cpus)",
                "jobs",
                instant=True,
            ),
        ),
        width=24,
    ),
)

NODES = (
    PanelSpec(
        "timeseries",
        "CPU busy",
        (
            q(
                '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))',  # noqa: E501
                "{{instance}}",
            ),
        ),
        unit="percentunit",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Memory used",
        (q("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}"),),
        unit="percentunit",
        width=12,
    ),
    PanelSpec("timeseries", "Load (1 min)", (q("node_load1", "{{instance}}"),), width=12),
    PanelSpec(
        "timeseries",
        "Filesystem free",
        (
            q(
                f"node_filesystem_avail_bytes{{{REAL_FS}}} / node_filesystem_size_bytes{{{REAL_FS}}}",  # noqa: E501
                "{{instance}} {{mountpoint}}",
            ),
        ),
        unit="percentunit",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Disk busy",
        (q("rate(node_disk_io_time_seconds_total[$__rate_interval])", "{{instance}} {{device}}"),),
        unit="percentunit",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Network",
        (
            q(
                'rate(node_network_receive_bytes_total{device!="lo"}[$__rate_interval])',
                "{{instance}} {{device}} in",
            ),
            q(
                'rate(node_network_transmit_bytes_total{device!="lo"}[$__rate_interval])',
                "{{instance}} {{device}} out",
            ),
        ),
        unit="Bps",
        width=12,
    ),
)

GPU_LEGEND = "{{node}} GPU {{gpu}}"
GPUS = (
    PanelSpec(
        "timeseries",
        "GPU utilisation",
        (q("DCGM_FI_DEV_GPU_UTIL", GPU_LEGEND),),
        unit="percent",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "SM activity",
        (q("DCGM_FI_PROF_SM_ACTIVE", GPU_LEGEND),),
        unit="percentunit",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Framebuffer memory used",
        (
            q(
                "DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE"
                " + DCGM_FI_DEV_FB_RESERVED)",
                GPU_LEGEND,
            ),
        ),
        unit="percentunit",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Temperature",
        (
            q("DCGM_FI_DEV_GPU_TEMP", GPU_LEGEND + " core"),
            q("DCGM_FI_DEV_MEMORY_TEMP", GPU_LEGEND + " memory"),
        ),
        unit="celsius",
        width=12,
    ),
    PanelSpec(
        "timeseries", "Power", (q("DCGM_FI_DEV_POWER_USAGE", GPU_LEGEND),), unit="watt", width=12
    ),
    PanelSpec(
        "timeseries",
        "GPU use per Slurm job",
        (
            q(
                'avg by (hpc_job) (DCGM_FI_DEV_GPU_UTIL{hpc_job!=""}) or vector(0)',
                "job {{hpc_job}}",
            ),
        ),
        unit="percent",
        width=12,
        description="hpc_job comes from the job mapping files the Slurm prolog writes.",
    ),
    PanelSpec(
        "table",
        "GPU errors",
        (
            q("DCGM_FI_DEV_XID_ERRORS", "last XID", instant=True),
            q(
                "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[1h])",
                "uncorrectable ECC (1h)",
                instant=True,
            ),
            q("DCGM_FI_DEV_ROW_REMAP_FAILURE", "row remap failure", instant=True),
            q("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "PCIe replays", instant=True),
        ),
        width=24,
    ),
)

SCHEDULER = (
    PanelSpec("timeseries", "Scrape targets up", (q("up", "{{job}} {{instance}}"),), width=12),
    PanelSpec(
        "timeseries",
        "Schedule cycle",
        (
            q("max(slurm_schedule_cycle_last)", "main (last)"),
            q("max(slurm_bf_cycle_last)", "backfill (last)"),
        ),
        unit="µs",
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "slurmctld queues",
        (
            q("max(slurm_slurmdbd_queue_size)", "slurmdbd messages"),
            q("max(slurm_agent_queue_size)", "agent queue"),
            q("max(slurm_server_thread_cnt)", "server threads"),
        ),
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Pending jobs by partition",
        (q("sum by (partition) (slurm_jobs_pending_by_reason) or vector(0)", "{{partition}}"),),
        width=12,
    ),
    PanelSpec(
        "timeseries",
        "Exporter command time",
        (q("slurm_exporter_command_duration_seconds", "{{command}}"),),
        unit="s",
        width=8,
    ),
    PanelSpec(
        "timeseries",
        "Exporter command errors",
        (q("rate(slurm_exporter_command_errors_total[$__rate_interval])", "{{command}}"),),
        unit="ops",
        width=8,
    ),
    PanelSpec(
        "stat",
        "Since last complete collection",
        (q("time() - max(slurm_exporter_last_success_timestamp_seconds)"),),
        unit="s",
        width=8,
    ),
)

DASHBOARDS: dict[str, tuple[str, tuple[PanelSpec, ...]]] = {
    "cluster-overview": ("Slurm cluster overview", CLUSTER),
    "nodes": ("Nodes", NODES),
    "gpus": ("GPUs", GPUS),
    "scheduler": ("Scheduler health", SCHEDULER),
}
