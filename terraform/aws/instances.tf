# The bastion (public subnet, Elastic IP) and the controller (private subnet, no public address).

# Newest official Debian 13 image, from Debian's own AWS account (never a name match alone).
data "aws_ami" "debian" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"]

  filter {
    name   = "name"
    values = ["debian-13-amd64-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  ami_id   = var.ami_id != "" ? var.ami_id : data.aws_ami.debian[0].id
  key_name = var.key_name != "" ? var.key_name : "${var.cluster_name}-admin"
  # A fixed address keeps the bastion's forwarding rule and the ssh config stable.
  controller_private_ip = cidrhost(var.private_subnet_cidr, 10)
  sshd_hardening        = file("${path.module}/templates/sshd-hardening.conf")

  # EC2 rejects ebs_optimized = true on families without EBS optimisation (t1, t2); every
  # current family is EBS-optimised by default. The same table, in full, is checked by
  # `hpcstack validate` (definition/checks_aws.py).
  no_ebs_optimization = ["t1", "t2"]
  burstable           = ["t2", "t3", "t3a", "t4g"]
  bastion_family      = split(".", var.bastion_instance_type)[0]
  controller_family   = split(".", var.controller_instance_type)[0]

  # Lab members reach the login service through the bastion, as lab_jump_user, with their own
  # keys: a forward to the login port and nothing else (templates/sshd-lab-jump.conf.tftpl).
  lab_jump      = var.login_port > 0 && length(var.lab_ssh_keys) > 0
  lab_jump_keys = "/etc/ssh/hpcstack-lab/authorized_keys"
  lab_jump_sshd = templatefile("${path.module}/templates/sshd-lab-jump.conf.tftpl", {
    jump_user             = var.lab_jump_user
    keys_file             = local.lab_jump_keys
    controller_private_ip = local.controller_private_ip
    login_port            = var.login_port
  })

  # The bastion's forwarding rules: the same template the multi-host test loads (tests/).
  tunnel_forward_rules = templatefile("${path.module}/templates/tunnel-forward.nft.tftpl", {
    protocol              = var.tunnel_protocol
    tunnel_port           = var.tunnel_port
    controller_private_ip = local.controller_private_ip
  })
}

# Only the public half of the user's existing key; no private key ever enters the state.
resource "aws_key_pair" "admin" {
  key_name   = local.key_name
  public_key = var.ssh_public_key

  tags = {
    Name = local.key_name
  }
}

# The bastion's network interface exists before the instance, with the Elastic IP already on
# it: the instance has its public address from the first packet, so cloud-init's apt runs with
# internet access (an EIP attached after boot would leave cloud-init without it).
resource "aws_network_interface" "bastion" {
  subnet_id       = aws_subnet.public.id
  security_groups = [aws_security_group.bastion.id, aws_security_group.bastion_allow_ip.id]

  tags = {
    Name            = "${local.name}-bastion"
    "hpcstack:role" = "bastion"
  }
}

# The bastion's public address is also the tunnel endpoint local sites dial (tunnel.endpoint).
resource "aws_eip" "bastion" {
  domain            = "vpc"
  network_interface = aws_network_interface.bastion.id

  tags = {
    Name            = "${local.name}-bastion"
    "hpcstack:role" = "bastion"
  }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_instance" "bastion" {
  #checkov:skip=CKV2_AWS_41:No IAM role on purpose: the bastion calls no AWS API, and no role means no credentials to steal through it.
  #checkov:skip=CKV_AWS_126:Detailed monitoring costs extra per instance; 5-minute basic metrics suffice for a jump host.
  ami           = local.ami_id
  instance_type = var.bastion_instance_type
  key_name      = aws_key_pair.admin.key_name
  ebs_optimized = contains(local.no_ebs_optimization, local.bastion_family) ? false : true
  monitoring    = false

  network_interface {
    network_interface_id = aws_network_interface.bastion.id
    device_index         = 0
  }

  # Burstable types: "standard" credits throttle instead of billing surplus CPU ("unlimited").
  dynamic "credit_specification" {
    for_each = contains(local.burstable, local.bastion_family) ? [1] : []
    content {
      cpu_credits = "standard"
    }
  }

  user_data = templatefile("${path.module}/templates/bastion-cloud-init.yaml.tftpl", {
    sshd_hardening       = local.sshd_hardening
    tunnel_forward_rules = local.tunnel_forward_rules
    lab_jump_sshd        = local.lab_jump ? local.lab_jump_sshd : ""
    lab_jump_user        = var.lab_jump_user
    lab_jump_keys_file   = local.lab_jump_keys
    lab_ssh_keys         = local.lab_jump ? var.lab_ssh_keys : []
  })

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = 8
    encrypted             = true
    delete_on_termination = true

    tags = {
      Name            = "${local.name}-bastion-root"
      "hpcstack:role" = "bastion"
    }
  }

  lifecycle {
    # A newer Debian image must not replace a running instance; replace it on purpose instead.
    ignore_changes = [ami]
  }

  tags = {
    Name            = "${local.name}-bastion"
    "hpcstack:role" = "bastion"
  }

  depends_on = [aws_eip.bastion]
}

resource "aws_instance" "controller" {
  #checkov:skip=CKV2_AWS_41:No IAM role on purpose: secrets arrive over SSH from `hpcstack deploy cloud`, so the controller needs no AWS API access.
  #checkov:skip=CKV_AWS_126:Detailed monitoring costs extra; Prometheus on the controller already scrapes it every scrape_interval.
  ami                         = local.ami_id
  instance_type               = var.controller_instance_type
  subnet_id                   = aws_subnet.private.id
  private_ip                  = local.controller_private_ip
  vpc_security_group_ids      = [aws_security_group.controller.id]
  key_name                    = aws_key_pair.admin.key_name
  associate_public_ip_address = false
  ebs_optimized               = contains(local.no_ebs_optimization, local.controller_family) ? false : true
  monitoring                  = false

  dynamic "credit_specification" {
    for_each = contains(local.burstable, local.controller_family) ? [1] : []
    content {
      cpu_credits = "standard"
    }
  }

  user_data = templatefile("${path.module}/templates/controller-cloud-init.yaml.tftpl", {
    sshd_hardening  = local.sshd_hardening
    ssh_user        = var.ssh_user
    cloud_site      = var.cloud_site
    images_registry = var.images_registry
    images_prefix   = var.images_prefix
    images_tag      = var.images_tag
    data_volume_id  = aws_ebs_volume.controller_data.id
  })

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # Hop limit 1: containers on the controller cannot reach the metadata service.
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.controller_volume_gb
    encrypted             = true
    delete_on_termination = true

    tags = {
      Name            = "${local.name}-controller-root"
      "hpcstack:role" = "controller"
    }
  }

  lifecycle {
    ignore_changes = [ami]
  }

  tags = {
    Name            = "${local.name}-controller"
    "hpcstack:role" = "controller"
  }

  # cloud-init installs Docker on first boot and needs the NAT gateway for that.
  depends_on = [aws_route.private_nat]
}
