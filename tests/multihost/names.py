"""Names, paths and the address plan every part of the harness uses."""

from __future__ import annotations

import ipaddress
from pathlib import Path

PREFIX = "hmh"
NETNS_DIR = Path("/var/run/netns")
RUN = Path("/run/hpcstack-mh")
DATA = Path("/var/lib/hpcstack-mh")
CERTS_D = Path("/etc/docker/certs.d")
CGROUP = Path("/sys/fs/cgroup")
REGISTRY_PORT = 5000

# Address plan. Checked against this machine's routes and addresses before anything is made.
INTERNET = ipaddress.IPv4Network("100.72.0.0/16")  # CGNAT space: "the internet" between hosts
ROOT_LINK = ("100.72.0.1", "100.72.0.2")  # inet side, root side
CLOUD_LINK = ("100.72.1.1", "100.72.1.2")  # inet side, the cloud host's public address
LAN_RANGE = ipaddress.IPv4Network("10.230.0.0/16")  # workstation LANs and engine bridges
DATA_TMPFS_SIZE = "10g"  # engines' data roots and the registry (images: about 3 GiB in all)
# The bastion variant (bastion.py): the VPC behind the bastion, the NAT gateway's public side,
# and the login user both sshds accept (removed by cleanup like everything else here).
VPC = ipaddress.IPv4Network("10.229.1.0/24")
NAT_GW_LINK = ("100.72.3.1", "100.72.3.2")  # inet side, the NAT gateway's public address
LOGIN_USER = f"{PREFIX}admin"
