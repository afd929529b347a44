terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Exact: .terraform.lock.hcl records this version and its hashes (docs/aws.md).
      version = "5.100.0"
    }
  }
}

# Credentials come only from the AWS environment: a profile (AWS_PROFILE / `aws sso login`),
# environment variables or an instance role. Never put keys here.
provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "hpcstack:cluster" = var.cluster_name
      "managed-by"       = "terraform"
      "project"          = "hpc-stack"
    }
  }
}
