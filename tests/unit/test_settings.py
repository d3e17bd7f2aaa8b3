import pytest

from scalediffusion.platform.settings import KafkaSettings, S3Settings, ServerSettings, SettingsError

S3_ENV = {"SD_S3_ACCESS_KEY": "ak", "SD_S3_SECRET_KEY": "sk"}


def test_missing_required_setting_names_the_variable():
    with pytest.raises(SettingsError, match="SD_S3_SECRET_KEY is required"):
        S3Settings.from_env({"SD_S3_ACCESS_KEY": "ak"})


def test_malformed_numbers_and_ports_name_the_variable():
    with pytest.raises(SettingsError, match="SD_GRPC_PORT must be an integer, got 'abc'"):
        ServerSettings.from_env(grpc_port=1, grpcweb_port=0, metrics_port=0, env={"SD_GRPC_PORT": "abc"})
    with pytest.raises(SettingsError, match="SD_METRICS_PORT must be a TCP port"):
        ServerSettings.from_env(grpc_port=1, grpcweb_port=0, metrics_port=0, env={"SD_METRICS_PORT": "70000"})


def test_s3_endpoint_with_a_scheme_is_refused_with_the_fix():
    with pytest.raises(SettingsError, match="without a scheme"):
        S3Settings.from_env({**S3_ENV, "SD_S3_ENDPOINT": "http://s3:8333"})


def test_defaults_and_public_endpoint_fallback():
    s3 = S3Settings.from_env({**S3_ENV, "SD_S3_ENDPOINT": "s3.internal:9000"})
    assert s3.public_endpoint == "s3.internal:9000"
    assert s3.buckets == ("raw", "clean", "models", "reports")
    assert "sk" not in repr(s3), "secrets stay out of logs"


def test_bool_and_list_parsing():
    server = ServerSettings.from_env(grpc_port=50051, grpcweb_port=8080, metrics_port=9400, env={"SD_CORS_ORIGINS": " a , b ,,"})
    assert server.cors_origins == ("a", "b")
    with pytest.raises(SettingsError, match="SD_S3_SECURE must be true or false"):
        S3Settings.from_env({**S3_ENV, "SD_S3_SECURE": "maybe"})


def test_topic_prefix_applies_to_every_topic():
    kafka = KafkaSettings.from_env({"SD_TOPIC_PREFIX": "t1-"})
    assert kafka.topic("sessions.uploaded") == "t1-sessions.uploaded"
