# The controller's data volume: MariaDB (the accounting database), slurmctld's StateSaveLocation
# and Prometheus live in Docker named volumes, which cloud-init mounts from this volume. It is a
# separate resource so it survives the instance: replacing or terminating the controller keeps
# it, and `terraform destroy` stops at it (prevent_destroy) until you remove it on purpose
# (docs/aws.md, "Tear down").

resource "aws_ebs_volume" "controller_data" {
  #checkov:skip=CKV_AWS_189:Encrypted with the account's aws/ebs key; a customer-managed key costs 1 USD/month and adds nothing here, since no other principal is granted the volume.
  availability_zone = local.az
  size              = var.controller_data_gb
  type              = "gp3"
  encrypted         = true

  tags = {
    Name                = "${local.name}-controller-data"
    "hpcstack:role"     = "controller-data"
    "hpcstack:snapshot" = var.cluster_name
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_volume_attachment" "controller_data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.controller_data.id
  instance_id = aws_instance.controller.id
  # Stop the instance before detaching, so MariaDB never loses a half-written page.
  stop_instance_before_detaching = true
}

# Daily snapshots, seven kept, by Data Lifecycle Manager (it needs its own service role).
data "aws_iam_policy_document" "dlm_assume" {
  count = var.data_snapshots_enabled ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["dlm.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dlm" {
  count              = var.data_snapshots_enabled ? 1 : 0
  name               = "${local.name}-dlm"
  assume_role_policy = data.aws_iam_policy_document.dlm_assume[0].json
}

resource "aws_iam_role_policy_attachment" "dlm" {
  count      = var.data_snapshots_enabled ? 1 : 0
  role       = aws_iam_role.dlm[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
}

resource "aws_dlm_lifecycle_policy" "controller_data" {
  count = var.data_snapshots_enabled ? 1 : 0
  # DLM names and descriptions allow only letters, digits, spaces, "_" and "-".
  description        = "hpcstack ${var.cluster_name} daily snapshots of the controller data volume"
  execution_role_arn = aws_iam_role.dlm[0].arn
  state              = "ENABLED"

  policy_details {
    resource_types = ["VOLUME"]
    target_tags = {
      "hpcstack:snapshot" = var.cluster_name
    }

    schedule {
      name      = "daily-seven-kept"
      copy_tags = true

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = ["03:00"]
      }

      retain_rule {
        count = 7
      }
    }
  }
}
