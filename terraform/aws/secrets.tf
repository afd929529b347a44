# Who may read which secret. `hpcstack aws push-secrets` stores them per reader:
#   /hpcstack/<cluster>/shared/munge.key      every host
#   /hpcstack/<cluster>/sites/<site>/...      that site's GPU hosts only
#   /hpcstack/<cluster>/controller/...        administrators only (hub key, passwords)
# policies/<site>.json (written by `hpcstack generate`) grants a site exactly its path and the
# munge key; attach it to the role or user the site's hosts use. With secrets_kms_key the values
# are encrypted with a key of this cluster, which those policies may use only through SSM and
# only for those parameters; the account's aws/ssm key would let any ssm:GetParameter* holder
# decrypt.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  parameter_root = "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter/hpcstack/${var.cluster_name}"
}

data "aws_iam_policy_document" "secrets_key" {
  count = var.secrets_kms_key ? 1 : 0

  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key only (AWS KMS Developer Guide, "Default key policy"); the account root statement delegates access to IAM policies, as AWS's default policy does.
  #checkov:skip=CKV_AWS_111:Same key policy statement: "*" is this key; write access is granted only through IAM policies (policies/*.json, the operator policy).
  #checkov:skip=CKV_AWS_356:Same key policy statement: in a key policy "*" cannot name another resource.
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "secrets" {
  count                   = var.secrets_kms_key ? 1 : 0
  description             = "hpcstack ${var.cluster_name}: SSM secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.secrets_key[0].json
}

resource "aws_kms_alias" "secrets" {
  count         = var.secrets_kms_key ? 1 : 0
  name          = "alias/hpcstack-${var.cluster_name}-secrets"
  target_key_id = aws_kms_key.secrets[0].key_id
}

# One policy per local site, from the JSON `hpcstack generate` wrote (render/terraform.py).
resource "aws_iam_policy" "site_secrets" {
  for_each    = toset(var.local_sites)
  name        = "${local.name}-${each.key}-secrets"
  description = "hpcstack ${var.cluster_name}: read site ${each.key}'s secrets and the munge key"
  policy      = file("${path.module}/policies/${each.key}.json")
}

# What the `hpcstack aws` commands need, and no more (docs/aws.md lists it per command).
data "aws_iam_policy_document" "operator" {
  #checkov:skip=CKV_AWS_356:ec2:Describe* and ssm:DescribeParameters have no resource-level permissions (AWS Service Authorization Reference); every other statement names its resources.
  statement {
    sid       = "FindTheClusterByTags"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "ssm:DescribeParameters"]
    resources = ["*"]
  }

  statement {
    sid       = "AllowIpOnlyInItsOwnGroup"
    actions   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
    resources = [aws_security_group.bastion_allow_ip.arn]
  }

  statement {
    sid       = "StopAndStartTheInstances"
    actions   = ["ec2:StartInstances", "ec2:StopInstances"]
    resources = [aws_instance.bastion.arn, aws_instance.controller.arn]
  }

  statement {
    sid       = "PushAndPullTheSecrets"
    actions   = ["ssm:PutParameter", "ssm:GetParameter", "ssm:GetParametersByPath", "ssm:DeleteParameters"]
    resources = [local.parameter_root, "${local.parameter_root}/*"]
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key ? [1] : []
    content {
      sid       = "UseTheSecretsKey"
      actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
      resources = [aws_kms_key.secrets[0].arn]
    }
  }
}

resource "aws_iam_policy" "operator" {
  name        = "${local.name}-operator"
  description = "hpcstack ${var.cluster_name}: what the hpcstack aws commands need"
  policy      = data.aws_iam_policy_document.operator.json
}
