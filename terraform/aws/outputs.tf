output "bastion_public_ip" {
  description = "Public (Elastic) address of the bastion: SSH jump host."
  value       = aws_eip.bastion.public_ip
}

output "tunnel_endpoint" {
  description = "Where local sites dial the tunnel: set tunnel.endpoint in stack.yaml to the address part (or run `hpcstack aws endpoint`)."
  value       = "${aws_eip.bastion.public_ip}:${var.tunnel_port}/${var.tunnel_protocol}"
}

output "controller_private_ip" {
  description = "Private address of the controller (reach it through the bastion)."
  value       = aws_instance.controller.private_ip
}

output "nat_public_ip" {
  description = "Address the controller's outbound traffic comes from (for registry allow-lists)."
  value       = one(aws_eip.nat[*].public_ip)
}

output "ssh_user" {
  description = "Login user on both instances."
  value       = var.ssh_user
}

output "vpc_id" {
  description = "The VPC holding the cluster."
  value       = aws_vpc.this.id
}

output "bastion_security_group_id" {
  description = "Security group of the bastion (rules from stack.yaml, managed here)."
  value       = aws_security_group.bastion.id
}

output "allow_ip_security_group_id" {
  description = "Security group that `hpcstack aws allow-ip` edits (Terraform never adds rules to it)."
  value       = aws_security_group.bastion_allow_ip.id
}

output "site_secret_policy_arns" {
  description = "Per local site, the IAM policy to attach to its GPU hosts' role or user."
  value       = { for site, policy in aws_iam_policy.site_secrets : site => policy.arn }
}

output "operator_policy_arn" {
  description = "IAM policy with what the hpcstack aws commands need."
  value       = aws_iam_policy.operator.arn
}

output "secrets_kms_key_alias" {
  description = "KMS alias the secrets are encrypted with (empty: the account's aws/ssm key)."
  value       = one(aws_kms_alias.secrets[*].name)
}

output "controller_data_volume_id" {
  description = "The data volume (MariaDB, StateSaveLocation); snapshots: `aws ec2 describe-snapshots --filters Name=volume-id,Values=<id>`."
  value       = aws_ebs_volume.controller_data.id
}

output "controller_security_group_id" {
  description = "Security group of the controller (bastion-only ingress)."
  value       = aws_security_group.controller.id
}
