# One VPC, one availability zone: a public subnet for the bastion (SSH jump host and tunnel
# endpoint) and the NAT gateway, a private subnet for the controller, which has no public address.

# The zone is named, never "whatever the region lists first": the subnets, the data volume and
# the instances must stay in one zone for the cluster's life. The lookup checks it is available.
data "aws_availability_zones" "chosen" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [var.availability_zone != "" ? var.availability_zone : "${var.region}a"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == 1
      error_message = "The availability zone (aws.availability_zone, default <region>a) is not available in this region: set another one."
    }
  }
}

locals {
  name = var.cluster_name
  az   = one(data.aws_availability_zones.chosen.names)
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:VPC flow logs bill per GB ingested; this small lab VPC has two instances and SGs that deny by default. Enable them per site policy (docs/aws.md).
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = "${local.name}-vpc"
  }
}

# Take over the VPC's default security group and leave it without rules, so anything launched
# without an explicit group can talk to nothing.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${local.name}-default-deny"
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${local.name}-igw"
  }
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = var.public_subnet_cidr
  availability_zone = local.az
  # Public addresses are given explicitly (Elastic IPs), never by default.
  map_public_ip_on_launch = false

  tags = {
    Name            = "${local.name}-public"
    "hpcstack:tier" = "public"
  }
}

resource "aws_subnet" "private" {
  vpc_id                  = aws_vpc.this.id
  cidr_block              = var.private_subnet_cidr
  availability_zone       = local.az
  map_public_ip_on_launch = false

  tags = {
    Name            = "${local.name}-private"
    "hpcstack:tier" = "private"
  }
}

# The NAT gateway gives the controller outbound access (Debian packages, image registry) without
# any inbound path. It is the largest fixed cost of this layout (see docs/aws.md): with
# nat_gateway_enabled = false it is deleted (and made again by the next apply with true), while
# the controller keeps serving the cluster through the tunnel.
resource "aws_eip" "nat" {
  count  = var.nat_gateway_enabled ? 1 : 0
  domain = "vpc"

  tags = {
    Name = "${local.name}-nat"
  }
}

resource "aws_nat_gateway" "this" {
  count         = var.nat_gateway_enabled ? 1 : 0
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public.id

  tags = {
    Name = "${local.name}-nat"
  }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${local.name}-public"
  }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${local.name}-private"
  }
}

resource "aws_route" "private_nat" {
  count                  = var.nat_gateway_enabled ? 1 : 0
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}
