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
  default = {
    # The scoring API reads Feast's files; it writes nothing.
    api = {
      read  = ["feast/", "silver/"]
      write = []
    }
    # Airflow tasks run the feature, training and batch-inference pipelines.
    pipelines = {
      read  = ["landing/", "bronze/", "quarantine/", "silver/", "gold/", "predictions/", "feast/"]
      write = ["landing/", "bronze/", "quarantine/", "silver/", "gold/", "predictions/", "feast/"]
    }
    # The MLflow server stores (proxies) the artifacts of every run and model.
    mlflow = {
      read  = ["mlflow/"]
      write = ["mlflow/"]
    }
  }
}
