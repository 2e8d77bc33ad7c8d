# Roles of the ECS tasks. One execution role (pull images, write logs, read the secrets
# the task definitions reference) and one task role per workload, each limited to its own
# prefixes of the data bucket and to the platform's KMS key.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# ----------------------------------------------------------------------------- execution

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadTaskSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = var.secret_arns
  }

  statement {
    sid       = "DecryptTaskSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-task-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# ----------------------------------------------------------------------------- task roles

data "aws_iam_policy_document" "bucket" {
  for_each = var.bucket_access

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = flatten([
        for prefix in distinct(concat(each.value.read, each.value.write)) : [prefix, "${prefix}*"]
      ])
    }
  }

  statement {
    sid       = "BucketLocation"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "ReadOwnPrefixes"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [for prefix in each.value.read : "${var.bucket_arn}/${prefix}*"]
  }

  dynamic "statement" {
    for_each = length(each.value.write) > 0 ? [1] : []
    content {
      sid = "WriteOwnPrefixes"
      actions = [
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
      ]
      resources = [for prefix in each.value.write : "${var.bucket_arn}/${prefix}*"]
    }
  }

  statement {
    sid = "UseTheBucketKey"
    actions = length(each.value.write) > 0 ? [
      "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
    ] : ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "task" {
  for_each = var.bucket_access

  name               = "${var.name}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task_bucket" {
  for_each = var.bucket_access

  name   = "data-bucket-${each.key}"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.bucket[each.key].json
}

# ECS Exec (operators' shell and port forwarding to the Airflow UI) for the pipelines role.
data "aws_iam_policy_document" "ecs_exec" {
  #checkov:skip=CKV_AWS_111:The SSM message channel actions support no resource-level permissions; AWS documents "*" for ECS Exec.
  #checkov:skip=CKV_AWS_356:The SSM message channel actions support no resource-level permissions; AWS documents "*" for ECS Exec.
  statement {
    sid = "EcsExecChannel"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "pipelines_ecs_exec" {
  name   = "ecs-exec"
  role   = aws_iam_role.task["pipelines"].id
  policy = data.aws_iam_policy_document.ecs_exec.json
}
