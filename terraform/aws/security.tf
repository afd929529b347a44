# Security groups. Rules are separate resources (not inline blocks), each with its own
# description. `hpcstack aws allow-ip` never touches these groups: it edits only the
# `bastion_allow_ip` group, which Terraform creates empty and never puts a rule in, so an address
# added by hand and the same address later added to stack.yaml never make a duplicate rule.
#
# Exposure, in full (tunnel = tunnel_protocol/tunnel_port: udp 51820 for WireGuard, tcp
# tunnel.ssh_port in ssh mode):
#   internet (trusted_cidrs)    -> bastion    tcp 22
#   internet (local_site_cidrs) -> bastion    tunnel  (forwarded to the controller)
#   internet (allow-ip)         -> bastion    what `hpcstack aws allow-ip` added
#   bastion                     -> controller tcp 22, tunnel, tcp login_port (lab members' jump)
# Slurm (6817-6819, srun ports), MariaDB, Prometheus and Grafana have no rule at all: they are
# reached only inside the WireGuard overlay or through an SSH tunnel.

# (Group descriptions cannot change without replacing the group: the "UDP" in them predates ssh mode.)
resource "aws_security_group" "bastion" {
  name        = "${local.name}-bastion"
  description = "hpcstack bastion: SSH from trusted_cidrs, tunnel UDP from local sites"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name            = "${local.name}-bastion"
    "hpcstack:role" = "bastion"
  }
}

resource "aws_security_group" "bastion_allow_ip" {
  #checkov:skip=CKV2_AWS_5:Attached to the bastion's network interface (aws_network_interface.bastion); checkov does not follow ENI attachments.
  name        = "${local.name}-bastion-allow-ip"
  description = "hpcstack bastion: addresses added by hpcstack aws allow-ip (no Terraform rules)"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name            = "${local.name}-bastion-allow-ip"
    "hpcstack:role" = "bastion-allow-ip"
  }
}

resource "aws_security_group" "controller" {
  name        = "${local.name}-controller"
  description = "hpcstack controller: SSH and tunnel UDP from the bastion only"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name            = "${local.name}-controller"
    "hpcstack:role" = "controller"
  }
}

# --- bastion ingress -----------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "bastion_ssh" {
  for_each = toset(var.trusted_cidrs)

  security_group_id = aws_security_group.bastion.id
  description       = "SSH from trusted address ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "bastion_tunnel" {
  for_each = toset(var.local_site_cidrs)

  security_group_id = aws_security_group.bastion.id
  description       = "Tunnel from local site ${each.value}"
  ip_protocol       = var.tunnel_protocol
  from_port         = var.tunnel_port
  to_port           = var.tunnel_port
  cidr_ipv4         = each.value
}

# --- bastion egress ------------------------------------------------------------------------

resource "aws_vpc_security_group_egress_rule" "bastion_to_controller_ssh" {
  security_group_id            = aws_security_group.bastion.id
  description                  = "SSH jump to the controller"
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  referenced_security_group_id = aws_security_group.controller.id
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_controller_tunnel" {
  security_group_id            = aws_security_group.bastion.id
  description                  = "Forwarded tunnel to the controller"
  ip_protocol                  = var.tunnel_protocol
  from_port                    = var.tunnel_port
  to_port                      = var.tunnel_port
  referenced_security_group_id = aws_security_group.controller.id
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_controller_login" {
  count = local.lab_jump ? 1 : 0

  security_group_id            = aws_security_group.bastion.id
  description                  = "Lab members' jump to the login service"
  ip_protocol                  = "tcp"
  from_port                    = var.login_port
  to_port                      = var.login_port
  referenced_security_group_id = aws_security_group.controller.id
}

resource "aws_vpc_security_group_egress_rule" "bastion_https" {
  security_group_id = aws_security_group.bastion.id
  description       = "HTTPS for package updates"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "bastion_http" {
  security_group_id = aws_security_group.bastion.id
  description       = "HTTP for Debian package mirrors (packages are signed)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

# --- controller ingress --------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "controller_ssh_from_bastion" {
  #checkov:skip=CKV_AWS_24:False positive: the source is the bastion's security group (referenced_security_group_id), not a CIDR; checkov reads a rule without cidr_ipv4 as open to the world.
  security_group_id            = aws_security_group.controller.id
  description                  = "SSH from the bastion only"
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  referenced_security_group_id = aws_security_group.bastion.id
}

resource "aws_vpc_security_group_ingress_rule" "controller_login_from_bastion" {
  count = local.lab_jump ? 1 : 0

  security_group_id            = aws_security_group.controller.id
  description                  = "The login service, from the bastion's lab jump only"
  ip_protocol                  = "tcp"
  from_port                    = var.login_port
  to_port                      = var.login_port
  referenced_security_group_id = aws_security_group.bastion.id
}

resource "aws_vpc_security_group_ingress_rule" "controller_tunnel_from_bastion" {
  security_group_id            = aws_security_group.controller.id
  description                  = "Tunnel forwarded by the bastion"
  ip_protocol                  = var.tunnel_protocol
  from_port                    = var.tunnel_port
  to_port                      = var.tunnel_port
  referenced_security_group_id = aws_security_group.bastion.id
}

# --- controller egress (through the NAT gateway) -------------------------------------------
# Replies to the tunnel and SSH flows are allowed by connection tracking; the site side sends
# keepalives so the tracked UDP flow never expires.

resource "aws_vpc_security_group_egress_rule" "controller_https" {
  security_group_id = aws_security_group.controller.id
  description       = "HTTPS: image registry and package updates via NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "controller_http" {
  security_group_id = aws_security_group.controller.id
  description       = "HTTP for Debian package mirrors via NAT (packages are signed)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}
