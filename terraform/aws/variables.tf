variable "region" {
  description = "AWS region for every resource (hpcstack writes aws.region from stack.yaml)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

variable "cluster_name" {
  description = "Cluster name from stack.yaml; tags every resource as hpcstack:cluster."
  type        = string
  default     = "hpcstack"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,19}$", var.cluster_name))
    error_message = "The cluster name must be 1-20 lower-case letters and digits, starting with a letter."
  }
}

variable "cloud_site" {
  description = "Name of the cloud site in stack.yaml; the controller runs compose/<cloud_site>.yml."
  type        = string
  default     = "cloud"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,30}$", var.cloud_site))
    error_message = "The site name must be lower-case letters, digits, '_' or '-', starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 network in CIDR form."
  }
}

variable "public_subnet_cidr" {
  description = "Public subnet (bastion, NAT gateway, tunnel endpoint); inside vpc_cidr."
  type        = string
  default     = "10.0.2.0/24"

  validation {
    condition     = can(cidrnetmask(var.public_subnet_cidr))
    error_message = "public_subnet_cidr must be an IPv4 network in CIDR form."
  }
}

variable "private_subnet_cidr" {
  description = "Private subnet (controller, no public address); inside vpc_cidr."
  type        = string
  default     = "10.0.1.0/24"

  validation {
    condition     = can(cidrnetmask(var.private_subnet_cidr))
    error_message = "private_subnet_cidr must be an IPv4 network in CIDR form."
  }
}

variable "availability_zone" {
  description = "Availability zone for both subnets and the data volume; empty means <region>a."
  type        = string
  default     = ""
}

variable "trusted_cidrs" {
  description = "Who may SSH to the bastion (your office/home addresses, e.g. 203.0.113.7/32). Required."
  type        = list(string)
  # No default on purpose: an empty or world-open list must never be deployed by accident.

  validation {
    condition     = length(var.trusted_cidrs) > 0
    error_message = "Set trusted_cidrs (aws.trusted_cidrs in stack.yaml) to at least one address, e.g. 203.0.113.7/32."
  }

  validation {
    condition     = alltrue([for c in var.trusted_cidrs : can(cidrnetmask(c))])
    error_message = "Every trusted_cidrs entry must be an IPv4 network in CIDR form, e.g. 203.0.113.7/32."
  }

  validation {
    condition     = alltrue([for c in var.trusted_cidrs : can(cidrnetmask(c)) && !endswith(c, "/0")])
    error_message = "trusted_cidrs must not contain 0.0.0.0/0 (or any /0): SSH stays closed to the internet."
  }
}

variable "local_site_cidrs" {
  description = "Public addresses the local (GPU) sites dial out from; the only sources allowed on the tunnel port."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.local_site_cidrs : can(cidrnetmask(c)) && !endswith(c, "/0")])
    error_message = "Every local_site_cidrs entry must be an IPv4 network in CIDR form and not a /0."
  }
}

variable "tunnel_port" {
  description = "Port local sites dial on the bastion: the WireGuard hub's UDP tunnel.port, or the sshd's TCP tunnel.ssh_port in ssh mode."
  type        = number
  default     = 51820

  validation {
    condition     = var.tunnel_port >= 1 && var.tunnel_port <= 65535 && var.tunnel_port != 22
    error_message = "tunnel_port must be a port between 1 and 65535 (and not 22)."
  }
}

variable "tunnel_protocol" {
  description = "udp (WireGuard, tunnel.mode wireguard) or tcp (reverse SSH, tunnel.mode ssh)."
  type        = string
  default     = "udp"

  validation {
    condition     = contains(["udp", "tcp"], var.tunnel_protocol)
    error_message = "tunnel_protocol must be udp or tcp."
  }
}

variable "controller_instance_type" {
  description = "EC2 instance type of the controller (slurmctld, slurmdbd, MariaDB, monitoring, WireGuard hub)."
  type        = string
  default     = "t3.medium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[0-9]*[a-z0-9]+$", var.controller_instance_type))
    error_message = "controller_instance_type must be an EC2 instance type such as t3.medium."
  }
}

variable "bastion_instance_type" {
  description = "EC2 instance type of the bastion (SSH jump host and forwarder for the tunnel)."
  type        = string
  default     = "t3.micro"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[0-9]*[a-z0-9]+$", var.bastion_instance_type))
    error_message = "bastion_instance_type must be an EC2 instance type such as t3.micro."
  }
}

variable "controller_volume_gb" {
  description = "Size of the controller's encrypted gp3 root volume in GiB."
  type        = number
  default     = 30

  validation {
    condition     = var.controller_volume_gb >= 8 && var.controller_volume_gb <= 16384
    error_message = "controller_volume_gb must be between 8 and 16384."
  }
}

variable "key_name" {
  description = "Name of the EC2 key pair made from ssh_public_key; empty means <cluster_name>-admin."
  type        = string
  default     = ""
}

variable "ssh_public_key" {
  description = "Your existing SSH public key (the contents of ~/.ssh/id_ed25519.pub). Only the public half is sent to AWS."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key line (ssh-ed25519 AAAA...), never a private key."
  }
}

variable "login_port" {
  description = "The login service's port on the controller (login.port); 0: no login service, no lab jump."
  type        = number
  default     = 0

  validation {
    condition     = var.login_port >= 0 && var.login_port <= 65535 && floor(var.login_port) == var.login_port
    error_message = "login_port is a TCP port (1-65535), or 0 for none."
  }
}

variable "lab_ssh_keys" {
  description = "Lab members' public keys (users[].ssh_keys): they may jump through the bastion to the login service, nothing more."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.lab_ssh_keys : can(regex("^(ssh|ecdsa|sk)-[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}( [^\n]*)?$", k))])
    error_message = "Each lab_ssh_keys entry is one OpenSSH public key line."
  }
}

variable "lab_jump_user" {
  description = "The bastion account lab members jump through (hpcstack's contract)."
  type        = string
  default     = "hpcstack-lab"
}

variable "ssh_user" {
  description = "Login user of the AMI (admin on Debian)."
  type        = string
  default     = "admin"
}

variable "ami_id" {
  description = "AMI for both instances; empty picks the newest official Debian 13 (trixie) amd64 image."
  type        = string
  default     = ""
}

variable "images_registry" {
  description = "Registry the controller pulls the cluster images from (images.registry); empty means build/load them on the host."
  type        = string
  default     = ""
}

variable "images_prefix" {
  description = "Image name prefix (images.prefix)."
  type        = string
  default     = "hpcstack"
}

variable "images_tag" {
  description = "Image tag (images.tag)."
  type        = string
  default     = "0.1.0"
}

variable "controller_data_gb" {
  description = "Size of the controller's data volume (MariaDB, StateSaveLocation, Prometheus) in GiB; it outlives the instance."
  type        = number
  default     = 20

  validation {
    condition     = var.controller_data_gb >= 1 && var.controller_data_gb <= 16384
    error_message = "controller_data_gb must be between 1 and 16384."
  }
}

variable "data_snapshots_enabled" {
  description = "Daily snapshots of the data volume by Data Lifecycle Manager, seven kept."
  type        = bool
  default     = true
}

variable "nat_gateway_enabled" {
  description = "false removes the NAT gateway (about 35 USD a month) while the cluster is idle; the controller then has no outbound access."
  type        = bool
  default     = true
}

variable "secrets_kms_key" {
  description = "Create a customer-managed KMS key for the SSM secrets, so only the per-site policies can decrypt them."
  type        = bool
  default     = false
}

variable "local_sites" {
  description = "Names of the local (GPU) sites; each gets an IAM policy from policies/<site>.json."
  type        = list(string)
  default     = []
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget in USD with an e-mail alarm at 80% (forecast) and 100% (actual); 0 means no budget."
  type        = number
  default     = 0

  validation {
    condition     = var.monthly_budget_usd >= 0
    error_message = "monthly_budget_usd must be 0 (none) or a positive amount."
  }
}

variable "budget_email" {
  description = "Who the budget alarm mails (required when monthly_budget_usd is set)."
  type        = string
  default     = ""

  validation {
    condition     = var.budget_email == "" || can(regex("^[^@ ]+@[^@ ]+$", var.budget_email))
    error_message = "budget_email must be an e-mail address."
  }
}
