"""What one site needs on its host: the files its compose file uses, known from the plan.

The compose document comes from `render.compose.compose_site(plan, site)`, the same function
that wrote compose/<site>.yml, so nothing here parses generated YAML back.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcstack.errors import StateError
from hpcstack.plan.topology import Plan, SitePlan
from hpcstack.render.compose import compose_site

# Trees every site's images and configuration come from.
BUNDLE_DIRS = ("images", "slurm", "prometheus", "grafana")
# 0400/0600 for secrets; 0440 for Grafana's password; 0444/0644 for public halves beside them.
SECRET_MODES = {0o400, 0o440, 0o600, 0o444, 0o644}


@dataclass(frozen=True)
class BundleFile:
    path: Path  # absolute, on this machine
    rel: str  # relative to the generated directory
    mode: int
    secret: bool


def compose_sources(doc: dict[str, Any]) -> list[str]:
    """Host paths a compose document names: secrets, configs, bind mounts, build contexts."""
    sources: list[str] = []
    for section in ("secrets", "configs"):
        for spec in (doc.get(section) or {}).values():
            if isinstance(spec, dict) and "file" in spec:
                sources.append(str(spec["file"]))
    for service in (doc.get("services") or {}).values():
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict) and volume.get("type") == "bind":
                sources.append(str(volume.get("source", "")))
            elif isinstance(volume, str) and volume.startswith((".", "/")):
                sources.append(volume.split(":", 1)[0])
        build = service.get("build")
        if isinstance(build, str):
            sources.append(build)
        elif isinstance(build, dict) and "context" in build:
            sources.append(str(build["context"]))
        env_file = service.get("env_file") or []
        sources.extend([env_file] if isinstance(env_file, str) else map(str, env_file))
    return sources


def site(plan: Plan, name: str) -> SitePlan:
    for s in plan.sites:
        if s.name == name:
            return s
    known = ", ".join(s.name for s in plan.sites)
    raise StateError(f"no site named {name!r} in the generated plan (sites: {known})")


def files_used(plan: Plan, site_plan: SitePlan, out_dir: Path) -> list[Path]:
    """Every file under `out_dir` the site's compose file refers to (directories expanded)."""
    compose_dir = out_dir / "compose"
    root = out_dir.resolve()
    found: set[Path] = set()
    for src in compose_sources(compose_site(plan, site_plan)):
        path = (compose_dir / src).resolve()
        if not path.is_relative_to(root):
            continue  # a host path such as /dev/net/tun: not part of the bundle
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.add(path)
        else:
            rel = path.relative_to(root)
            raise StateError(
                f"compose/{site_plan.name}.yml needs {rel}, which does not exist in {out_dir}: "
                "run `hpcstack generate`"
            )
    return sorted(found)


def secret_mode(path: Path) -> int:
    """A secret file's mode, kept within the allowed ones (private keys 0600/0400)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode in SECRET_MODES else 0o600


def site_secrets(plan: Plan, site_plan: SitePlan, out_dir: Path) -> list[str]:
    """The secrets/ files (relative to secrets/) this site's compose file uses."""
    secrets = (out_dir / "secrets").resolve()
    return [
        p.relative_to(secrets).as_posix()
        for p in files_used(plan, site_plan, out_dir)
        if p.is_relative_to(secrets)
    ]


def bundle_files(plan: Plan, site_plan: SitePlan, out_dir: Path) -> list[BundleFile]:
    """The site's bundle: its compose file, the shared trees, and what compose uses.

    Secrets go only if this site's compose file uses them, so the controller never holds
    another site's private keys.
    """
    compose_file = out_dir / "compose" / f"{site_plan.name}.yml"
    if not compose_file.is_file():
        raise StateError(f"{compose_file} does not exist: run `hpcstack generate` first")
    root = out_dir.resolve()
    secrets = root / "secrets"
    local = {compose_file.resolve()}
    for d in BUNDLE_DIRS:
        if (out_dir / d).is_dir():
            local.update(p.resolve() for p in (out_dir / d).rglob("*") if p.is_file())
    local.update(files_used(plan, site_plan, out_dir))
    out = []
    for path in sorted(local):
        rel = path.relative_to(root).as_posix()
        if path.is_relative_to(secrets):
            out.append(BundleFile(path, rel, secret_mode(path), secret=True))
        else:
            executable = path.stat().st_mode & stat.S_IXUSR
            out.append(BundleFile(path, rel, 0o755 if executable else 0o644, secret=False))
    return out
