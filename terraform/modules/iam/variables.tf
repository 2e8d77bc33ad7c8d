variable "name" {
  description = "Prefix of every role name."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the data bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the bucket and the secrets."
  type        = string
}

variable "secret_arns" {
  description = "Secrets Manager secrets the containers receive as environment variables."
  type        = list(string)
}

variable "bucket_access" {
  description = "Prefixes of the data bucket each task role may read and write."
  type = map(object({
    read  = list(string)
    write = list(string)
  }))
  # Every zone the code uses, at the bucket's root (the containers leave FRAUD_S3_PREFIX
  # empty). MLflow clients read and write the mlflow/ zone directly with their own role:
  # training creates the experiment with the artifact location s3://<bucket>/mlflow, so
  # artifacts do not pass through the tracking server.
  default = {
    # The scoring API loads the champion model from mlflow/. Features come from Redis and
    # the Feast registry from PostgreSQL, so it reads no other zone and writes nothing.
    api = {
      read  = ["mlflow/"]
      write = []
    }
    # Airflow tasks run the feature pipeline (landing/ to bronze/, quarantine/ and silver/,
    # Great Expectations results under validation/), training (reads bronze/ and silver/,
    # logs models to mlflow/) and batch inference (reads bronze/, silver/ and the model,
    # writes predictions/). Writers also read their own zones (Spark's committer and the
    # publish step list, head and copy what they write).
    pipelines = {
      read  = ["landing/", "bronze/", "quarantine/", "validation/", "silver/", "predictions/", "mlflow/"]
      write = ["landing/", "bronze/", "quarantine/", "validation/", "silver/", "predictions/", "mlflow/"]
    }
    # The tracking server reads artifacts for its UI and stores those of runs logged to an
    # experiment without an explicit location (mlflow-artifacts:/, --artifacts-destination).
    mlflow = {
      read  = ["mlflow/"]
      write = ["mlflow/"]
    }
  }
}
