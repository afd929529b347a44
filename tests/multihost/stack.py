"""The definition the multi-host tests run: a cloud site and two workstation sites, images from
the cloud host's registry, the tunnel endpoint the cloud host's public address, and two lab
users in two accounts (their key pairs made by hpcstack). With WireGuard the cloud site serves
the shared filesystem (/home, /shared) to every node of both workstations; ssh mode has none."""

from __future__ import annotations

from tests.multihost.harness import CLOUD_LINK, REGISTRY_PORT

SITES = {"lab1": ("a", "10.241.0.0/24"), "lab2": ("b", "10.242.0.0/24")}
USERS = {"alice": 2101, "bob": 2102}  # alice in physics (fair share 10), bob in bio (5)
CLUSTER = "hmh"
LOGIN_PORT = 2022  # the login service, on the cloud host's 127.0.0.1


def definition(
    mode: str = "wireguard", name: str = CLUSTER, sites: tuple[str, ...] = ("lab1", "lab2")
) -> str:
    local = "".join(
        f"""
  - name: {site}
    role: local
    subnet: {SITES[site][1]}
    nodes:
      - prefix: {SITES[site][0]}
        count: 2
        cpus: 1
        memory_mb: 512
        features: [cpu]
"""
        for site in sites
    )
    return f"""# multi-host test: cloud host + workstations behind NAT (tests/multihost)
cluster:
  name: {name}
  slurm_release: "26.05"
  slurmd_timeout: 20  # a cut workstation is DOWN within a minute (the default is 60 s)
controller:
  site: cloud
images:
  registry: "{CLOUD_LINK[1]}:{REGISTRY_PORT}"
  prefix: hpcstack
  tag: "0.1.0"
tunnel:
  mode: {mode}
  subnet: 10.250.0.0/16
  endpoint: {CLOUD_LINK[1]}
  port: 51820
  ssh_port: 2222
monitoring:
  enabled: false
storage:
  shared_fs: {"true" if mode == "wireguard" else "false"}
login:
  port: {LOGIN_PORT}
accounts:
  - name: physics
    fairshare: 10
  - name: bio
    fairshare: 5
users:
  - name: alice
    uid: {USERS["alice"]}
    account: physics
  - name: bob
    uid: {USERS["bob"]}
    account: bio
sites:
  - name: cloud
    role: cloud
    subnet: 10.240.0.0/24
{local}"""
