"""Settings read the environment when created, parse Feast's Redis format, and fail loudly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fraud_platform.settings import RedisSettings, S3Settings, SparkSettings
from fraud_platform.spark import executor_conf, s3a_conf


def test_redis_connection_string_in_feast_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CONNECTION_STRING", "cache.internal:6380,password=r9x,ssl=true,db=2")
    settings = RedisSettings()
    assert (settings.host, settings.port) == ("cache.internal", 6380)
    assert settings.client_kwargs() == {
        "host": "cache.internal",
        "port": 6380,
        "password": "r9x",
        "ssl": True,
        "db": 2,
    }


def test_redis_numeric_password_stays_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    # Feast json-decodes values, so "12345" becomes an int there; redis-py needs a str.
    monkeypatch.setenv("REDIS_CONNECTION_STRING", "127.0.0.1:6379,password=12345")
    assert RedisSettings().client_kwargs()["password"] == "12345"


def test_missing_redis_connection_string_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_CONNECTION_STRING", raising=False)
    with pytest.raises(ValidationError, match="REDIS_CONNECTION_STRING"):
        RedisSettings()


def test_redis_secret_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CONNECTION_STRING", "h:1,password=topsecret")
    assert "topsecret" not in repr(RedisSettings())


def test_s3_keys_and_uris_respect_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_S3_BUCKET", "lake")
    monkeypatch.setenv("FRAUD_S3_PREFIX", "staging/")
    settings = S3Settings()
    assert settings.key("bronze", "transactions/") == "staging/bronze/transactions"
    assert settings.uri("silver") == "s3://lake/staging/silver"
    assert settings.s3a_uri("silver", "card") == "s3a://lake/staging/silver/card"
    monkeypatch.delenv("FRAUD_S3_PREFIX")
    assert S3Settings().uri() == "s3://lake"


def test_s3_endpoint_prefers_the_s3_specific_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2")
    assert S3Settings().endpoint_url == "http://s3-only:2"
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    assert S3Settings().endpoint_url == "http://generic:1"


def test_s3_client_kwargs_without_keys_use_the_default_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert S3Settings().client_kwargs() == {"region_name": "eu-west-1"}


def test_s3a_conf_wires_endpoint_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    conf = s3a_conf(S3Settings())
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.access.key"] == "key"
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "secret"


def test_spark_defaults_to_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    assert SparkSettings().master == "local[*]"
    monkeypatch.setenv("SPARK_MASTER", "spark://spark-master:7077")
    assert SparkSettings().master == "spark://spark-master:7077"


def test_executor_size_is_set_only_where_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_EXECUTOR_MEMORY", raising=False)
    monkeypatch.delenv("SPARK_EXECUTOR_CORES", raising=False)
    assert executor_conf(SparkSettings()) == {}
    monkeypatch.setenv("SPARK_EXECUTOR_MEMORY", "1g")
    monkeypatch.setenv("SPARK_EXECUTOR_CORES", "1")
    assert executor_conf(SparkSettings()) == {
        "spark.executor.memory": "1g",
        "spark.executor.cores": "1",
    }


def test_placeholder_secrets_are_refused_outside_the_local_stack(monkeypatch) -> None:
    from inference_pipeline.settings import ApiSettings

    monkeypatch.setenv("REDIS_CONNECTION_STRING", "redis:6379,password=change-me-redis")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "change-me-app-secret-key")
    monkeypatch.setenv("FRAUD_API_KEY", "CHANGE_ME")
    for environment in ("compose", "production"):
        monkeypatch.setenv("FRAUD_ENVIRONMENT", environment)
        for settings, variable in (
            (RedisSettings, "REDIS_CONNECTION_STRING"),
            (S3Settings, "AWS_SECRET_ACCESS_KEY"),
            (ApiSettings, "FRAUD_API_KEY"),
        ):
            with pytest.raises(ValidationError, match=variable):
                settings()
    monkeypatch.setenv("FRAUD_ENVIRONMENT", "local")
    assert RedisSettings().port == 6379 and ApiSettings().api_key


def test_real_secrets_pass_anywhere(monkeypatch) -> None:
    monkeypatch.setenv("FRAUD_ENVIRONMENT", "production")
    monkeypatch.setenv("REDIS_CONNECTION_STRING", "redis:6379,password=r0a1b2c3")
    assert RedisSettings().client_kwargs()["password"] == "r0a1b2c3"
