"""Slurm accounting from the definition, applied on every `up` (idempotent, compare first).

What stack.yaml says becomes slurmdbd's state through `sacctmgr -i` in slurmctld's container
(the one Docker choke point, through Cluster.slurm): the cluster, one QOS per account holding its
per-user limits (MaxTRESPerUser, MaxJobsPerUser, MaxWall, Priority), each account with its fair
share and QOS, each user's association in their account. A user or account no longer in the
definition loses its associations (no more submissions); its jobs stay in sacct. Nothing is run
when the database already matches, so a second `up` changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hpcstack.definition.model import Account, Stack
from hpcstack.errors import ToolError
from hpcstack.operate.session import Cluster, Progress, quiet

ROOT = "root"  # Slurm's top account and its admin user: never touched here


@dataclass(frozen=True)
class Assoc:
    account: str
    user: str
    fairshare: str
    qos: str
    default_qos: str


def wall(minutes: int) -> str:
    """Slurm's spelling of a time limit, as `sacctmgr show` prints it."""
    days, rest = divmod(minutes, 1440)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text


def qos_settings(account: Account) -> dict[str, str]:
    """The QOS named after the account: its per-user limits, '' where there is none."""
    tres = []
    if account.max_cpus_per_user is not None:
        tres.append(f"cpu={account.max_cpus_per_user}")
    if account.max_gpus_per_user is not None:
        tres.append(f"gres/gpu={account.max_gpus_per_user}")
    return {
        "MaxTRESPerUser": ",".join(tres),
        "MaxJobsPerUser": str(account.max_running_jobs_per_user or ""),
        "MaxWall": wall(account.max_wall_minutes) if account.max_wall_minutes else "",
        "Priority": str(account.priority),
    }


QOS_FIELDS = ("MaxTRESPerUser", "MaxJobsPerUser", "MaxWall", "Priority")
_CLEAR = {"MaxTRESPerUser": "cpu=-1,gres/gpu=-1", "MaxJobsPerUser": "-1", "MaxWall": "-1"}


def _rows(text: str) -> list[list[str]]:
    return [line.split("|") for line in text.splitlines() if line.strip()]


def _set_args(want: dict[str, str], have: dict[str, str]) -> list[str]:
    args = []
    for key, value in want.items():
        if _norm(have.get(key, "")) != _norm(value):
            args.append(f"{key}={value or _CLEAR[key]}")
    return args


def _norm(value: str) -> str:
    return ",".join(sorted(value.split(","))) if value else ""


class Accounting:
    """sacctmgr against the running controller: read, compare, change only what differs."""

    def __init__(self, cluster: Cluster, progress: Progress = quiet):
        self.cluster = cluster
        self.name = cluster.plan.cluster
        self.progress = progress
        self.changes: list[str] = []

    def show(self, *args: str) -> list[list[str]]:
        return _rows(self.cluster.slurm("sacctmgr", "--noheader", "--parsable2", "show", *args))

    def run(self, *args: str) -> None:
        self.changes.append(" ".join(args))
        self.cluster.slurm("sacctmgr", "-i", *args)

    def assocs(self) -> list[Assoc]:
        fmt = "format=account,user,fairshare,qos,defaultqos"
        return [Assoc(*r[:5]) for r in self.show("assoc", "where", f"cluster={self.name}", fmt)]

    def apply(self, stack: Stack) -> list[str]:
        if not any(r[0] == self.name for r in self.show("cluster", "format=cluster")):
            self.run("add", "cluster", self.name)
        self.apply_qos(stack)
        self.apply_accounts(stack)
        self.apply_users(stack)
        self.remove_stale(stack)
        return self.changes

    def apply_qos(self, stack: Stack) -> None:
        have = {r[0]: dict(zip(QOS_FIELDS, r[1:], strict=False)) for r in self.show(
            "qos", "format=name,maxtrespu,maxjobspu,maxwall,priority"
        )}  # fmt: skip
        for account in stack.accounts:
            if account.name not in have:
                self.run("add", "qos", account.name)
            args = _set_args(qos_settings(account), have.get(account.name, {}))
            if args:
                self.run("modify", "qos", "where", f"name={account.name}", "set", *args)

    def apply_accounts(self, stack: Stack) -> None:
        have = {a.account: a for a in self.assocs() if not a.user}
        for account in stack.accounts:
            want = {"fairshare": str(account.fairshare), "qos": account.name}
            current = have.get(account.name)
            settings = [f"Fairshare={account.fairshare}", f"QOS={account.name}"]
            settings.append(f"DefaultQOS={account.name}")
            if current is None:
                self.run("add", "account", account.name, f"Cluster={self.name}", *settings)
            elif (current.fairshare, current.qos, current.default_qos) != (
                want["fairshare"],
                want["qos"],
                account.name,
            ):
                where = ["where", f"name={account.name}", f"cluster={self.name}", "set"]
                self.run("modify", "account", *where, *settings)

    def apply_users(self, stack: Stack) -> None:
        have = {(a.account, a.user) for a in self.assocs() if a.user}
        defaults = {r[0]: r[1] for r in self.show("user", "format=user,defaultaccount")}
        for user in stack.users:
            if (user.account, user.name) not in have:
                self.run(
                    "add", "user", user.name, f"Account={user.account}",
                    f"DefaultAccount={user.account}", f"Cluster={self.name}",
                )  # fmt: skip
            elif defaults.get(user.name) != user.account:
                self.run("modify", "user", "where", f"name={user.name}", "set",
                         f"DefaultAccount={user.account}")  # fmt: skip

    def stale(self, stack: Stack) -> Iterator[Assoc]:
        """Associations of users (or accounts) the definition no longer has."""
        wanted = {(u.account, u.name) for u in stack.users}
        for assoc in self.assocs():
            if assoc.user and assoc.user != ROOT and (assoc.account, assoc.user) not in wanted:
                yield assoc

    def remove_stale(self, stack: Stack) -> None:
        for assoc in self.stale(stack):
            try:
                self.run("delete", "user", "where", f"name={assoc.user}",
                         f"account={assoc.account}", f"cluster={self.name}")  # fmt: skip
                self.progress(f"accounting: {assoc.user} removed from {assoc.account}")
            except ToolError as exc:  # a job of theirs still runs: it finishes, try next `up`
                self.progress(f"accounting: {assoc.user} not removed yet: {exc.summary or exc}")
        accounts = {a.name for a in stack.accounts}
        users_left = {a.account for a in self.assocs() if a.user}
        for assoc in self.assocs():
            gone = assoc.account not in accounts and assoc.account != ROOT
            if not assoc.user and gone and assoc.account not in users_left:
                self.run("delete", "account", "where", f"name={assoc.account}",
                         f"cluster={self.name}")  # fmt: skip


def apply_accounting(cluster: Cluster, progress: Progress = quiet) -> list[str]:
    """Bring slurmdbd in line with users:/accounts:; returns the sacctmgr changes made."""
    changes = Accounting(cluster, progress).apply(cluster.plan.stack)
    if changes:
        progress(f"accounting: {len(changes)} change(s) applied (sacctmgr)")
    return changes
