output "bastion_public_ip" {
  description = "Public (Elastic) address of the bastion: SSH jump host."
  value       = aws_eip.bastion.public_ip
}

output "tunnel_endpoint" {
  description = "Where local sites dial the WireGuard hub: set tunnel.endpoint in stack.yaml to the address part."
  value       = "${aws_eip.bastion.public_ip}:${var.tunnel_port}"
}

output "controller_private_ip" {
  description = "Private address of the controller (reach it through the bastion)."
  value       = aws_instance.controller.private_ip
}

output "nat_public_ip" {
  description = "Address the controller's outbound traffic comes from (for registry allow-lists)."
  value       = aws_eip.nat.public_ip
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
  description = "Security group that `hpcstack aws allow-ip` edits."
  value       = aws_security_group.bastion.id
}

output "controller_security_group_id" {
  description = "Security group of the controller (bastion-only ingress)."
  value       = aws_security_group.controller.id
}
