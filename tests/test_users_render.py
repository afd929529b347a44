"""users/ rendering, the compose wiring and the accounting diff (sacctmgr), without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hpcstack.definition.load import load_stack
from hpcstack.operate.accounting import Accounting, qos_settings, wall
from hpcstack.plan.topology import make_plan
from hpcstack.render.compose import compose_site
from hpcstack.render.terraform import terraform_variables
from hpcstack.render.users import authorized_keys, users_tsv

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsAKpZhGxESBmEww9NKqiFYMBEG3HJHc+YfWlXNdCS5 a@b"


def _stack(repo: Path, tmp_path: Path) -> Any:
    doc = yaml.safe_load((repo / "stack.yaml").read_text())
    doc["groups"] = [{"name": "gpu", "gid": 3000}]
    doc["accounts"] = [{"name": "physics", "fairshare": 10, "max_cpus_per_user": 2,
                        "max_wall_minutes": 90}, {"name": "bio"}]  # fmt: skip
    doc["users"] = [
        {"name": "alice", "uid": 2001, "account": "physics", "groups": ["gpu"], "ssh_keys": [KEY]},
        {"name": "bob", "uid": 2002, "gid": 2102, "account": "bio"},
    ]
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_stack(path)


def test_users_tsv_and_keys(repo: Path, tmp_path: Path) -> None:
    stack = _stack(repo, tmp_path)
    lines = users_tsv(stack).splitlines()[1:]
    assert lines == [
        "group\tgpu\t3000",
        "user\talice\t2001\t2001\tgpu",
        "user\tbob\t2002\t2102\t-",
    ]
    assert authorized_keys(stack, "alice") == KEY + "\n"
    assert authorized_keys(stack, "bob") == "no-agent-forwarding @bob\n"  # generated pair


def test_login_service_and_users_mounts(repo: Path, tmp_path: Path) -> None:
    plan = make_plan(_stack(repo, tmp_path))
    cloud = compose_site(plan, plan.controller)
    login = cloud["services"]["login"]
    assert login["ports"] == ["127.0.0.1:2022:22"]
    assert {s["source"] for s in login["secrets"]} == {"munge_key", "login_host_key"}
    assert "../users:/etc/hpcstack/users:ro" in cloud["services"]["slurmctld"]["volumes"]
    local = compose_site(plan, plan.sites[1])
    assert all("../users:/etc/hpcstack/users:ro" in local["services"][n]["volumes"]
               for n in ("node1", "node2"))  # fmt: skip
    assert "login" not in local["services"]


def test_aws_login_path_inputs(repo: Path, tmp_path: Path) -> None:
    """On AWS the login service is published where the bastion reaches it, and Terraform gets
    the login port and the members' listed keys (named by member; a generated key stays out)."""
    stack = _stack(repo, tmp_path)
    published = stack.model_copy(
        update={"login": stack.login.model_copy(update={"address": "0.0.0.0"})}
    )
    plan = make_plan(published)
    assert compose_site(plan, plan.controller)["services"]["login"]["ports"] == ["0.0.0.0:2022:22"]
    tfvars = terraform_variables(plan)
    assert tfvars["login_port"] == 2022 and tfvars["lab_jump_user"] == "hpcstack-lab"
    assert tfvars["lab_ssh_keys"] == [" ".join(KEY.split()[:2]) + " alice"]  # bob: none listed
    off = stack.model_copy(update={"login": stack.login.model_copy(update={"enabled": False})})
    assert terraform_variables(make_plan(off))["login_port"] == 0


class FakeSlurm:
    """sacctmgr's answers for a database that already holds `assocs` and `qos`."""

    def __init__(self, assocs: list[str], qos: list[str], users: list[str]):
        self.answers = {"assoc": assocs, "qos": qos, "user": users, "cluster": ["hpcstack"]}
        self.changes: list[list[str]] = []

    def slurm(self, *argv: str, user: str | None = None) -> str:
        if argv[1] == "-i":
            self.changes.append(list(argv[2:]))
            return ""
        return "\n".join(self.answers[argv[4]]) + "\n"


class FakeCluster:
    def __init__(self, stack: Any, fake: FakeSlurm):
        self.plan = make_plan(stack)
        self.slurm = fake.slurm


def test_accounting_from_empty_then_idempotent(repo: Path, tmp_path: Path) -> None:
    stack = _stack(repo, tmp_path)
    empty = FakeSlurm(["root||1|normal|", "root|root|1|normal|"], ["normal||||0"], ["root|root"])
    Accounting(FakeCluster(stack, empty), print).apply(stack)  # type: ignore[arg-type]
    made = [" ".join(c) for c in empty.changes]
    assert "add qos physics" in made
    assert (
        "modify qos where name=physics set MaxTRESPerUser=cpu=2 MaxWall=01:30:00 Priority=0" in made
    )
    assert any(m.startswith("add account physics Cluster=hpcstack Fairshare=10") for m in made)
    assert "add user alice Account=physics DefaultAccount=physics Cluster=hpcstack" in made
    # The database as that left it: nothing more to do.
    done = FakeSlurm(
        ["root||1|normal|", "physics||10|physics|physics", "bio||1|bio|bio",
         "physics|alice|1|physics|physics", "bio|bob|1|bio|bio"],
        ["normal||||0", "physics|cpu=2||01:30:00|0", "bio||||0"],
        ["alice|physics", "bob|bio"],
    )  # fmt: skip
    assert Accounting(FakeCluster(stack, done)).apply(stack) == []  # type: ignore[arg-type]


def test_removed_user_loses_association(repo: Path, tmp_path: Path) -> None:
    stack = _stack(repo, tmp_path)
    db = FakeSlurm(
        ["physics||10|physics|physics", "bio||1|bio|bio", "physics|alice|1|physics|physics",
         "bio|bob|1|bio|bio", "bio|carol|1|bio|bio", "old||1|old|old"],
        ["physics|cpu=2||01:30:00|0", "bio||||0"],
        ["alice|physics", "bob|bio", "carol|bio"],
    )  # fmt: skip
    Accounting(FakeCluster(stack, db)).apply(stack)  # type: ignore[arg-type]
    assert db.changes == [
        ["delete", "user", "where", "name=carol", "account=bio", "cluster=hpcstack"],
        ["delete", "account", "where", "name=old", "cluster=hpcstack"],
    ]


def test_wall_and_qos_spelling() -> None:
    assert (wall(90), wall(1440), wall(2000)) == ("01:30:00", "1-00:00:00", "1-09:20:00")
    stack_account = type("A", (), {"max_cpus_per_user": None, "max_gpus_per_user": 1,
                                   "max_running_jobs_per_user": 3, "max_wall_minutes": None,
                                   "priority": 5})()  # fmt: skip
    assert qos_settings(stack_account) == {  # type: ignore[arg-type]
        "MaxTRESPerUser": "gres/gpu=1", "MaxJobsPerUser": "3", "MaxWall": "", "Priority": "5",
    }  # fmt: skip


def test_ssh_config_local_prints_each_member(repo: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hpcstack.cli.main import cli

    _stack(repo, tmp_path)  # writes tmp_path/stack.yaml
    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(cli, ["generate", "-c", str(tmp_path / "stack.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ssh-config", "--local", "-d", str(out)])
    assert r.exit_code == 0, r.output
    assert "Host hpcstack-alice\n  HostName 127.0.0.1\n  Port 2022\n  User alice" in r.output
    bob = r.output.split("Host hpcstack-bob")[1]
    assert f"IdentityFile {(out / 'secrets/users/bob.key').resolve()}" in bob
    assert "IdentityFile" not in r.output.split("Host hpcstack-bob")[0]  # alice: her own key
    assert (out / "secrets/users/bob.key").stat().st_mode & 0o777 == 0o600
    assert (out / "secrets/users/login_host_ed25519_key").stat().st_mode & 0o777 == 0o400
    pinned = (out / "secrets/users/pub/login_known_hosts_alias").read_text()
    assert pinned.startswith("hpcstack-login ssh-ed25519 ")
    # The committed-style output holds no key of bob's: only the reference.
    assert (out / "users/keys/bob").read_text() == "no-agent-forwarding @bob\n"
