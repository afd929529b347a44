"""The lab's people in the definition: `users:`, `groups:`, `accounts:` and `login:`."""

from __future__ import annotations

from pydantic import Field

from hpcstack.definition.model_base import Number, Strict

DEMO_USER, DEMO_UID = "hpc", 1000
FIRST_LAB_UID, LAST_LAB_UID = 1000, 59999  # Debian: < 1000 system, 60000-64999 packages (slurm)
DEFAULT_ACCOUNT = "lab"


class Group(Strict):
    """A supplementary group with a fixed gid (the same on every host)."""

    name: str
    gid: Number


class User(Strict):
    """A lab member: the same uid/gid on the controller, the login service and every node."""

    name: str
    uid: Number
    gid: Number | None = Field(None, description="primary group id; default: the uid")
    groups: list[str] = Field([], max_length=32, description="names from `groups:`")
    ssh_keys: list[str] = Field(
        [], max_length=16, description="OpenSSH public keys; none: hpcstack generates a pair"
    )
    account: str = Field(DEFAULT_ACCOUNT, description="the default Slurm account")

    @property
    def primary_gid(self) -> int:
        return self.uid if self.gid is None else self.gid


class Account(Strict):
    """A Slurm account: its fair share and the per-user limits of its QOS (named after it)."""

    name: str
    fairshare: Number = Field(1, ge=1, le=1_000_000)
    max_cpus_per_user: Number | None = Field(None, ge=1, le=1_000_000)
    max_gpus_per_user: Number | None = Field(None, ge=0, le=100_000)
    max_running_jobs_per_user: Number | None = Field(None, ge=1, le=1_000_000)
    max_wall_minutes: Number | None = Field(None, ge=1, le=525_600)
    priority: Number = Field(0, ge=0, le=1_000_000, description="the QOS priority")


class Login(Strict):
    """The login service on the cloud site: key-only sshd for the lab's users."""

    enabled: bool = True
    port: Number = Field(2022, ge=1, le=65535, description="on the host's `address`")
    address: str = Field(
        "127.0.0.1",
        description="where the host publishes it: 127.0.0.1 (this host only), or the address "
        "the bastion reaches on AWS (0.0.0.0; the controller's security group admits the "
        "bastion only)",
    )


def _default_users(data: object) -> object:
    # No `users:` at all: the image's demo user in the default account, so a definition from
    # before users existed keeps its one (key-generated) lab user.
    if isinstance(data, dict) and "users" not in data:
        accounts = data.get("accounts")
        first = DEFAULT_ACCOUNT
        if isinstance(accounts, list) and accounts and isinstance(accounts[0], dict):
            first = str(accounts[0].get("name", DEFAULT_ACCOUNT))
        data = {**data, "users": [{"name": DEMO_USER, "uid": DEMO_UID, "account": first}]}
    return data
