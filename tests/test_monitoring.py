"""Monitoring: generated Prometheus config, rules and dashboards, checked with the real tools.

promtool comes from Debian's package through scripts/promtool.sh (installed into a cache on
first use). The end-to-end test starts Prometheus and node_exporter from images/ and serves the
recorded Slurm and DCGM expositions as scrape targets, then asks Prometheus every dashboard
query through hpcstack.monitoring_check, the same check the cluster tests use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from hpcstack.definition.model import Stack
from hpcstack.exporter.collector import SlurmCollector
from hpcstack.operate.monitoring_check import empty_panels, query
from hpcstack.plan.topology import Plan, make_plan
from hpcstack.render import Artifact
from hpcstack.render.grafana import build_dashboard, panel_queries, render_grafana
from hpcstack.render.grafana_panels import DASHBOARDS
from hpcstack.render.monitoring_compose import monitoring_services
from hpcstack.render.prometheus import dcgm_relabel, prometheus_config, render_prometheus

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PROMTOOL = ROOT / "scripts" / "promtool.sh"


def plan_for(**extra: Any) -> Plan:
    doc: dict[str, Any] = {
        "sites": [
            {"name": "cloud", "role": "cloud", "subnet": "172.28.0.0/24"},
            {
                "name": "local",
                "role": "local",
                "subnet": "172.28.1.0/24",
                "nodes": [{"prefix": "node", "count": 2, "cpus": 2}],
            },
            {
                "name": "gpusite",
                "role": "local",
                "subnet": "172.28.2.0/24",
                "nodes": [{"name": "g1", "gpus": 1}, {"name": "g2", "gpus": 1}],
            },
        ],
        **extra,
    }
    return make_plan(Stack.model_validate(doc))


def write_tree(artifacts: list[Artifact], root: Path) -> None:
    for art in artifacts:
        path = root / art.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(art.content)
        path.chmod(0o644)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=300)


# --- generated configuration ---------------------------------------------------------------


def test_scrape_targets_follow_the_plan() -> None:
    plan = plan_for(monitoring={"scrape_interval": "15s", "retention": "30d"})
    cfg = prometheus_config(plan)
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert cfg["global"]["scrape_interval"] == "15s"
    node_targets = {
        c["labels"]["site"]: c["targets"][0] for c in jobs["node-exporter"]["static_configs"]
    }
    # The cloud site's exporter by its Docker address; on a tunneled site the exporters share
    # the first node's network namespace, so they answer at its overlay address.
    assert node_targets == {
        "cloud": "172.28.0.16:9100",
        "local": "10.99.1.2:9100",  # the exporters' own WireGuard peer, never a node's
        "gpusite": "10.99.2.2:9100",
    }
    assert [c["targets"] for c in jobs["dcgm-exporter"]["static_configs"]] == [["10.99.2.2:9400"]]
    paths = sorted(c["labels"]["__metrics_path__"] for c in jobs["slurmctld"]["static_configs"])
    assert paths == ["/metrics/jobs", "/metrics/nodes", "/metrics/partitions", "/metrics/scheduler"]
    assert jobs["slurmctld"]["scrape_interval"] == "60s"
    assert jobs["slurm-exporter"]["static_configs"][0]["targets"] == ["172.28.0.17:9341"]
    prom = monitoring_services(plan, plan.controller)["services"]["prometheus"]
    assert "--storage.tsdb.retention.time=30d" in prom["command"]


def test_no_native_endpoint_before_slurm_25_11_and_no_dcgm_without_gpus() -> None:
    plan = plan_for(cluster={"slurm_release": "24.11"}, monitoring={"dcgm": False})
    jobs = {j["job_name"] for j in prometheus_config(plan)["scrape_configs"]}
    assert jobs == {"prometheus", "node-exporter", "slurm-exporter"}


def test_dcgm_series_are_labelled_with_the_slurm_node_owning_the_gpu() -> None:
    rules = dcgm_relabel(plan_for())
    owners = {r["replacement"]: r["regex"] for r in rules if "replacement" in r}
    assert owners == {"g1": "gpusite;(0)", "g2": "gpusite;(1)"}
    assert rules[-1] == {"action": "labeldrop", "regex": "Hostname|hostname"}


def test_monitoring_off_renders_nothing() -> None:
    plan = plan_for(monitoring={"enabled": False})
    assert list(render_prometheus(plan)) == []
    assert list(render_grafana(plan)) == []
    assert monitoring_services(plan, plan.controller)["services"] == {}


def test_compose_publishes_only_on_loopback_and_keeps_the_password_in_a_secret() -> None:
    plan = plan_for()
    cloud = monitoring_services(plan, plan.controller)
    assert set(cloud["services"]) == {"prometheus", "grafana", "slurm-exporter", "node-exporter"}
    for svc in cloud["services"].values():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:")
    env = cloud["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert not any("PASSWORD" in k and not k.endswith("__FILE") for k in env)
    assert cloud["secrets"] == {
        "grafana_admin_password": {"file": "../secrets/grafana_admin_password"}
    }
    gpu = monitoring_services(plan, plan.site("gpusite"))
    assert set(gpu["services"]) == {"node-exporter", "dcgm-exporter"}
    dcgm = gpu["services"]["dcgm-exporter"]
    assert "--hpc-job-mapping-dir" in dcgm["command"]
    assert ":latest" not in dcgm["image"]


def test_dashboards_are_deterministic_and_import_anywhere() -> None:
    plan = plan_for()
    first = {a.path: a.content for a in render_grafana(plan)}
    assert first == {a.path: a.content for a in render_grafana(plan)}
    for slug in DASHBOARDS:
        text = first[f"grafana/dashboards/{slug}.json"]
        assert text.endswith("}\n")
        board = json.loads(text)
        assert json.dumps(board, sort_keys=True, indent=2) + "\n" == text
        variables = board["templating"]["list"]
        assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= (
            variables[0].items()
        )
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
                assert "nvidia_gpu_duty_cycle" not in target["expr"]
        assert "id" not in board  # provisioning and import both assign one
    ds = yaml.safe_load(first["grafana/provisioning/datasources/prometheus.yml"])
    assert ds["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load(first["grafana/provisioning/dashboards/hpcstack.yml"])
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_gpu_dashboard_uses_dcgm_names() -> None:
    exprs = " ".join(e for _, e in panel_queries(build_dashboard("gpus")))
    for name in (
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_XID_ERRORS",
        "hpc_job",
    ):
        assert name in exprs


# --- promtool ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    write_tree(list(render_prometheus(plan_for())), root)
    return root


def test_promtool_check_config(generated: Path) -> None:
    config = generated / "prometheus" / "prometheus.yml"
    done = promtool("check-config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    # the stand-in is for the token file alone: a real mistake still fails
    config.with_name("broken.yml").write_text(config.read_text() + "bogus_key: 1\n")
    done = promtool("check-config", str(config.with_name("broken.yml")))
    assert done.returncode != 0


def test_promtool_check_rules(generated: Path) -> None:
    rules = sorted((generated / "prometheus" / "rules").glob("*.yml"))
    done = promtool("check", "rules", *map(str, rules))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_rules_covers_every_rule(generated: Path) -> None:
    tests = sorted((generated / "prometheus" / "tests").glob("*.yml"))
    done = promtool("test", "rules", *map(str, tests))
    assert done.returncode == 0, done.stdout + done.stderr
    tested_alerts, tested_exprs = set(), set()
    for path in tests:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested_alerts |= {
                t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")
            }
            tested_exprs |= {t["expr"] for t in case.get("promql_expr_test", [])}
    for path in (generated / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] in tested_alerts, f"no firing test for {rule['alert']}"
                else:
                    assert rule["record"] in tested_exprs, f"no test for {rule['record']}"


# --- end to end ----------------------------------------------------------------------------

PREFIX = "hpcstack-montest"
SCRAPE = "2s"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=900
    )


def build_image(name: str) -> str:
    # APT_OPTIONS as for every image build (e.g. -o Acquire::Check-Valid-Until=false on a frozen
    # mirror); BASE_IMAGE must exist locally or be pullable (scripts/base-image.sh makes it).
    tag = f"{PREFIX}-{name}:latest"
    apt = os.environ.get("HPCSTACK_APT_OPTIONS", "")
    base = os.environ.get("BASE_IMAGE", "debian:forky-slim")
    done = docker(
        "build",
        "-q",
        "-t",
        tag,
        "--build-arg",
        f"APT_OPTIONS={apt}",
        "--build-arg",
        f"BASE_IMAGE={base}",
        str(ROOT / "images" / name),
        check=False,
    )
    assert done.returncode == 0, f"building {name} failed (APT_OPTIONS={apt!r}):\n{done.stderr}"
    return tag


def exporter_exposition() -> str:
    """The project's exporter, run on the recorded 'drained' phase, as Prometheus sees it."""
    files = {"scontrol": "scontrol-nodes.json", "squeue": "squeue.json", "sdiag": "sdiag.json"}
    phase = FIXTURES / "slurm-json" / "drained"
    registry = CollectorRegistry()
    registry.register(SlurmCollector(lambda argv: (phase / files[argv[0]]).read_text()))
    return generate_latest(registry).decode()


def e2e_config(plan: Plan) -> dict[str, Any]:
    def job(name: str, host: str, port: int, **extra: Any) -> dict[str, Any]:
        return {
            "job_name": name,
            "static_configs": [
                {
                    "targets": [f"{host}:{port}"],
                    **({"labels": extra.pop("labels")} if "labels" in extra else {}),
                }
            ],
            **extra,
        }

    return {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": ["rules/recording.yml", "rules/alerts.yml"],
        "scrape_configs": [
            job("prometheus", "127.0.0.1", 9090),
            job("node-exporter", f"{PREFIX}-node", 9100),
            job("slurmctld", f"{PREFIX}-native", 9100),
            job("slurm-exporter", f"{PREFIX}-exporter", 9100),
            job(
                "dcgm-exporter",
                f"{PREFIX}-dcgm",
                9100,
                labels={"site": "gpusite"},
                metric_relabel_configs=dcgm_relabel(plan),
            ),
        ],
    }


def wait_for(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed")
    plan = plan_for()
    root = tmp_path_factory.mktemp("e2e")
    root.chmod(0o755)
    write_tree(list(render_prometheus(plan)), root)
    prom_dir = root / "prometheus"
    (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(e2e_config(plan), sort_keys=False))
    textfiles = {
        "native": "".join(
            p.read_text() for p in sorted((FIXTURES / "slurm-native").glob("*.prom"))
        ),
        "exporter": exporter_exposition(),
        "dcgm": (FIXTURES / "dcgm-metrics.prom").read_text(),
    }
    for name, text in textfiles.items():
        (root / name).mkdir(mode=0o755)
        (root / name / "metrics.prom").write_text(text)
        (root / name / "metrics.prom").chmod(0o644)
    for d in [prom_dir, *prom_dir.rglob("*")]:
        d.chmod(0o755 if d.is_dir() else 0o644)

    prom_image, ne_image = build_image("prometheus"), build_image("node-exporter")
    network = f"{PREFIX}-net"
    names = [f"{PREFIX}-{n}" for n in ("prom", "node", *textfiles)]
    for name in names:
        docker("rm", "-f", name, check=False)
    docker("network", "rm", network, check=False)
    docker("network", "create", network)
    try:
        docker("run", "-d", "--name", f"{PREFIX}-node", "--network", network, ne_image)
        for name in textfiles:
            # node_exporter's textfile collector serves a file as it is: a static scrape target.
            docker(
                "run",
                "-d",
                "--name",
                f"{PREFIX}-{name}",
                "--network",
                network,
                "-v",
                f"{root / name}:/textfiles:ro",
                ne_image,
                "--collector.disable-defaults",
                "--collector.textfile",
                "--collector.textfile.directory=/textfiles",
            )
        docker(
            "run",
            "-d",
            "--name",
            f"{PREFIX}-prom",
            "--network",
            network,
            "-p",
            "127.0.0.1::9090",
            "-v",
            f"{prom_dir}:/etc/prometheus:ro",
            prom_image,
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.listen-address=:9090",
        )
        port = docker("port", f"{PREFIX}-prom", "9090/tcp").stdout.strip().rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"

        def all_up() -> bool:
            ups = query(url, "up")
            return len(ups) == 5 and all(s["value"][1] == "1" for s in ups)

        wait_for("every target up", all_up)
        time.sleep(8)  # enough samples for rate() and increase() over the 1m windows
        yield url
    finally:
        logs = docker("logs", "--tail", "30", f"{PREFIX}-prom", check=False)
        print(logs.stdout, logs.stderr)
        for name in names:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", network, check=False)


@pytest.mark.docker
def test_every_dashboard_panel_returns_series(prometheus_url: str) -> None:
    empty = empty_panels(prometheus_url)
    assert not empty, "\n".join(e.format() for e in empty)


@pytest.mark.docker
def test_gpu_series_carry_the_slurm_node_and_job(prometheus_url: str) -> None:
    util = query(prometheus_url, "DCGM_FI_DEV_GPU_UTIL")
    by_gpu = {s["metric"]["gpu"]: s["metric"] for s in util}
    assert by_gpu["0"]["node"] == "g1" and by_gpu["1"]["node"] == "g2"
    assert all("Hostname" not in m for m in by_gpu.values())
    assert by_gpu["0"]["hpc_job"] == "3"


@pytest.mark.docker
def test_unconditional_alerts_fire_from_recorded_data(prometheus_url: str) -> None:
    def firing() -> set[tuple[str, str]]:
        with urllib.request.urlopen(f"{prometheus_url}/api/v1/alerts", timeout=10) as resp:
            alerts = json.load(resp)["data"]["alerts"]
        return {
            (a["labels"]["alertname"], a["labels"].get("node", ""))
            for a in alerts
            if a["state"] == "firing"
        }

    got = wait_for("GpuXidError on g2", lambda: ("GpuXidError", "g2") in firing() and firing())
    assert ("GpuXidError", "g2") in got
