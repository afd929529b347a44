# Security groups. Rules are separate resources (not inline blocks) so that
# `hpcstack aws allow-ip` can add a caller's address without terraform removing it on the next
# apply, and so that each rule carries its own description.
#
# Exposure, in full:
#   internet (trusted_cidrs)    -> bastion    tcp 22
#   internet (local_site_cidrs) -> bastion    udp tunnel_port  (forwarded to the controller)
#   bastion                     -> controller tcp 22, udp tunnel_port
# Slurm (6817-6819, srun ports), MariaDB, Prometheus and Grafana have no rule at all: they are
# reached only inside the WireGuard overlay or through an SSH tunnel.

resource "aws_security_group" "bastion" {
  name        = "${local.name}-bastion"
  description = "hpcstack bastion: SSH from trusted_cidrs, tunnel UDP from local sites"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name            = "${local.name}-bastion"
    "hpcstack:role" = "bastion"
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
  description       = "WireGuard from local site ${each.value}"
  ip_protocol       = "udp"
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
  description                  = "Forwarded WireGuard to the controller"
  ip_protocol                  = "udp"
  from_port                    = var.tunnel_port
  to_port                      = var.tunnel_port
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

resource "aws_vpc_security_group_ingress_rule" "controller_tunnel_from_bastion" {
  security_group_id            = aws_security_group.controller.id
  description                  = "WireGuard forwarded by the bastion"
  ip_protocol                  = "udp"
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
