"""Compose services for monitoring, merged by the compose renderer into each site's file.

`monitoring_services(plan, site)` returns {"services", "volumes", "secrets", "configs"} for one
site. Paths are relative to compose/. Nothing is published beyond 127.0.0.1 of the host.
Prometheus and node_exporter come from Debian-built images; Grafana and dcgm-exporter from
their upstream images at pinned tags (each can be turned off in stack.yaml).
"""

from __future__ import annotations

from typing import Any

from hpcstack.contract import (
    ENV_METRICS_TOKEN,
    ENV_METRICS_TOKEN_WATCH_S,
    ENV_WG_PEER,
    EXPORTER_PORTS,
    GPU_JOB_DIR,
    METRICS_TOKEN_DIR,
    METRICS_TOKEN_PATH,
    METRICS_TOKEN_VOLUME,
    METRICS_TOKEN_WATCH_S,
    MUNGE_KEY_SECRET,
    SECRETS_DIR,
    SLURM_CONF_DIR,
    WG_CONF_DIR,
    WG_KEY_SECRET,
    WG_PUB_DIR,
)
from hpcstack.definition.model import duration_seconds
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.plan.tunnel import exporter_peers
from hpcstack.render.compose_common import (
    LOGGING,
    healthcheck,
    overlay_route_env,
    slurm_service_base,
)
from hpcstack.render.compose_common import build as _build
from hpcstack.render.prometheus import gpu_sites, metrics_token

GRAFANA_IMAGE = "grafana/grafana-oss:11.6.0"  # the Grafana build the dashboards are made for
DCGM_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
GRAFANA_SECRET = "grafana_admin_password"
WG_SECRET_PREFIX = "wg_"  # a WireGuard peer's compose secret: wg_<peer>, as the nodes' are


def _net(site: SitePlan, service: str) -> dict[str, Any]:
    """Every monitoring service has its own address on its site's network (a tunneled site's
    node-exporter is also its own WireGuard peer: `exporter_tunnel`)."""
    return {"networks": {"site": {"ipv4_address": site.service_ip(service)}}}


def exporter_tunnel(plan: Plan, site: SitePlan) -> dict[str, Any]:
    """A tunneled site's node-exporter as the site's exporters' own WireGuard peer: Prometheus
    reaches it through the hub at its own overlay address, whatever becomes of the nodes'
    containers (decision faults-0016). The entrypoint brings the tunnel up as root, then runs the
    exporter as its own user."""
    if not (site.tunneled and exporter_peers(plan)):
        return {}
    secret = f"{WG_SECRET_PREFIX}{site.exporter_peer}"
    return {
        "cap_add": ["NET_ADMIN"],
        "devices": ["/dev/net/tun:/dev/net/tun"],
        "environment": {ENV_WG_PEER: site.exporter_peer},
        "secrets": [{"source": secret, "target": WG_KEY_SECRET}],
        "volumes": [
            f"../wireguard/{site.name}:{WG_CONF_DIR}:ro",
            f"../secrets/wireguard/pub:{WG_PUB_DIR}:ro",
        ],
        "extra_hosts": ["host.docker.internal:host-gateway"],
    }


def _built(plan: Plan, name: str) -> dict[str, Any]:
    return {
        "image": plan.image(name),
        "build": _build(plan, name),
        "restart": "unless-stopped",
        "logging": LOGGING,
    }


def _http_health(
    url: str, interval: str = "5s", retries: int = 24, start_period: str = "10s"
) -> dict[str, Any]:
    """An HTTP GET of `url` from inside the container (the upstream images carry wget)."""
    test = ["wget", "-q", "-O", "/dev/null", url]
    return healthcheck(test, interval, timeout="5s", retries=retries, start_period=start_period)


def metrics_token_mount(plan: Plan, read_only: bool) -> list[str]:
    """The volume Prometheus's /metrics token travels in: written beside slurmctld, read by
    Prometheus; no other service mounts it."""
    if not metrics_token(plan):
        return []
    return [f"{METRICS_TOKEN_VOLUME}:{METRICS_TOKEN_DIR}" + (":ro" if read_only else "")]


def prometheus_service(plan: Plan, site: SitePlan) -> dict[str, Any]:
    mon = plan.stack.monitoring
    svc: dict[str, Any] = {
        **_built(plan, "prometheus"),
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={mon.retention}",
            f"--web.listen-address=:{EXPORTER_PORTS['prometheus']}",
        ],
        "volumes": [
            "../prometheus:/etc/prometheus:ro",
            "prometheus-data:/prometheus",
            *metrics_token_mount(plan, read_only=True),
        ],
        "ports": [f"127.0.0.1:{mon.prometheus_port}:{EXPORTER_PORTS['prometheus']}"],
        "healthcheck": _http_health(f"http://127.0.0.1:{EXPORTER_PORTS['prometheus']}/-/ready"),
        **_net(site, "prometheus"),
        **_overlay_route(plan, site),
    }
    if metrics_token(plan):
        # the entrypoint restarts Prometheus when the token changes (it keeps the first it read)
        svc.setdefault("environment", {}).update(
            {
                ENV_METRICS_TOKEN: METRICS_TOKEN_PATH,
                ENV_METRICS_TOKEN_WATCH_S: str(METRICS_TOKEN_WATCH_S),
            }
        )
    return svc


def _overlay_route(plan: Plan, site: SitePlan) -> dict[str, Any]:
    """Prometheus reaches exporters on tunneled sites through the hub."""
    env = overlay_route_env(plan, site)
    return {"cap_add": ["NET_ADMIN"], "environment": env} if env else {}


def grafana_service(site: SitePlan, port: int) -> dict[str, Any]:
    return {
        "image": GRAFANA_IMAGE,
        "restart": "unless-stopped",
        "logging": LOGGING,
        "depends_on": ["prometheus"],
        "environment": {
            "GF_SECURITY_ADMIN_USER": "admin",
            "GF_SECURITY_ADMIN_PASSWORD__FILE": f"{SECRETS_DIR}/{GRAFANA_SECRET}",
            "GF_AUTH_ANONYMOUS_ENABLED": "false",
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
        },
        "secrets": [GRAFANA_SECRET],
        "volumes": [
            "../grafana/provisioning:/etc/grafana/provisioning:ro",
            "../grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": [f"127.0.0.1:{port}:3000"],
        "healthcheck": _http_health(
            "http://127.0.0.1:3000/api/health", interval="15s", retries=5, start_period="30s"
        ),
        **_net(site, "grafana"),
    }


def slurm_exporter_service(plan: Plan, site: SitePlan) -> dict[str, Any]:
    interval = duration_seconds(plan.stack.monitoring.scrape_interval)
    svc = slurm_service_base(
        plan,
        "slurm-exporter",
        [
            "slurm-exporter",
            "--port",
            str(EXPORTER_PORTS["slurm-exporter"]),
            "--interval",
            str(interval),
        ],
    )
    svc.update(
        {
            # The slurm image carries Slurm's client commands, munge and the exporter package.
            "secrets": [{"source": "munge_key", "target": MUNGE_KEY_SECRET}],
            "volumes": [f"../slurm:{SLURM_CONF_DIR}:ro"],
            **_net(site, "slurm-exporter"),
            "healthcheck": healthcheck(
                [
                    "python3",
                    "-c",
                    "import urllib.request; urllib.request.urlopen("
                    f"'http://127.0.0.1:{EXPORTER_PORTS['slurm-exporter']}/metrics', timeout=5)",
                ],
                interval="5s",
                retries=24,
                start_period="10s",
            ),
        }
    )
    return svc


def node_exporter_service(plan: Plan, site: SitePlan) -> dict[str, Any]:
    tunnel = exporter_tunnel(plan, site)
    svc: dict[str, Any] = {
        **_built(plan, "node-exporter"),
        "command": [
            f"--web.listen-address=:{EXPORTER_PORTS['node-exporter']}",
            "--path.procfs=/host/proc",
            "--path.sysfs=/host/sys",
            "--path.rootfs=/host/root",
            "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run|var/lib/docker/.+)($|/)",
        ],
        "pid": "host",
        "volumes": ["/proc:/host/proc:ro", "/sys:/host/sys:ro", "/:/host/root:ro"],
        "healthcheck": _http_health(f"http://127.0.0.1:{EXPORTER_PORTS['node-exporter']}/metrics"),
        **_net(site, "node-exporter"),
    }
    svc["volumes"] += tunnel.pop("volumes", [])
    svc.update(tunnel)
    return svc


def _dcgm_net(plan: Plan, site: SitePlan) -> dict[str, Any]:
    """dcgm-exporter (an upstream image, no WireGuard in it) shares node-exporter's network on
    a tunneled site: it answers at the exporters' overlay address, never a node's."""
    if exporter_tunnel(plan, site):
        return {"network_mode": "service:node-exporter", "depends_on": ["node-exporter"]}
    return _net(site, "dcgm-exporter")


def dcgm_exporter_service(plan: Plan, site: SitePlan) -> dict[str, Any]:
    return {
        "image": DCGM_IMAGE,
        "restart": "unless-stopped",
        "logging": LOGGING,
        "command": [
            "dcgm-exporter",
            "-f",
            "/etc/dcgm-exporter/hpcstack-counters.csv",
            "--hpc-job-mapping-dir",
            GPU_JOB_DIR,
        ],
        "configs": [
            {"source": "dcgm_counters", "target": "/etc/dcgm-exporter/hpcstack-counters.csv"}
        ],
        "cap_add": ["SYS_ADMIN"],  # DCGM profiling fields (SM activity) need it
        "volumes": [f"gpu-jobs:{GPU_JOB_DIR}:ro"],
        # The upstream image has bash but no wget/curl: a TCP connect means it serves.
        "healthcheck": healthcheck(
            ["bash", "-c", f"</dev/tcp/127.0.0.1/{EXPORTER_PORTS['dcgm-exporter']}"],
            interval="15s",
            timeout="5s",
            retries=5,
            start_period="30s",
        ),
        "deploy": {
            "resources": {
                "reservations": {
                    "devices": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
                }
            }
        },
        **_dcgm_net(plan, site),
    }


def monitoring_services(plan: Plan, site: SitePlan) -> dict[str, dict[str, Any]]:
    mon = plan.stack.monitoring
    out: dict[str, dict[str, Any]] = {"services": {}, "volumes": {}, "secrets": {}, "configs": {}}
    if not mon.enabled:
        return out
    services, volumes = out["services"], out["volumes"]
    services["node-exporter"] = node_exporter_service(plan, site)
    if site.is_controller:
        services["prometheus"] = prometheus_service(plan, site)
        services["slurm-exporter"] = slurm_exporter_service(plan, site)
        volumes["prometheus-data"] = {}
        if metrics_token(plan):
            volumes[METRICS_TOKEN_VOLUME] = {}
        if mon.grafana:
            services["grafana"] = grafana_service(site, mon.grafana_port)
            volumes["grafana-data"] = {}
            out["secrets"][GRAFANA_SECRET] = {"file": f"../secrets/{GRAFANA_SECRET}"}
    if exporter_tunnel(plan, site):
        out["secrets"][f"{WG_SECRET_PREFIX}{site.exporter_peer}"] = {
            "file": f"../secrets/wireguard/{site.exporter_peer}.key"
        }
    if mon.dcgm and site in gpu_sites(plan) and site.site.gpu_runtime != "mknod":
        services["dcgm-exporter"] = dcgm_exporter_service(plan, site)
        volumes["gpu-jobs"] = {}
        out["configs"]["dcgm_counters"] = {"file": "../prometheus/dcgm-counters.csv"}
    return out
