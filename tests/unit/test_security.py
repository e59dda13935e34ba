"""[kafka.security] without a broker: the checks, the redaction (scenario.toml, repr, errors),
a missing password_env, and the PPIPE_SECURITY_* round trip from harness to SDK."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.pretty import pretty_repr

from ppipe_stream import protocol
from ppipe_stream.errors import ScenarioError
from ppipe_stream.run.orchestration import run_scenario
from ppipe_stream.scenario import dump_scenario, loads_scenario
from ppipe_stream.sdk import PipelineConfig
from ppipe_stream.security import PLAINTEXT, ClientSecurity, SecretMissing

SECRET = "hunter2-do-not-leak"

_BASE = """
name = "sec"
[dataset]
source = "synth"
generator = "hyperplane"
[load]
profile = "constant"
rate = 10
count = 10
[[pipelines]]
name = "p"
runtime = "process"
command = ["python", "-c", "pass"]
[kafka]
bootstrap = "127.0.0.1:9093"
"""


def _load(security: str, tmp_path: Path | None = None):
    base = tmp_path or Path(".")
    return loads_scenario(_BASE + security, file=str(base / "scenario.toml"), base_dir=base)


def _literal(extra: str = "") -> str:
    return ("[kafka.security]\nprotocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n"
            f"username = \"alice\"\npassword = \"{SECRET}\"\n{extra}")


def test_dump_scenario_writes_the_password_as_stars():
    loaded = _load(_literal())
    written = dump_scenario(loaded.scenario)
    assert SECRET not in written
    assert 'password = "***"' in written
    assert loaded.scenario.kafka.security.password == SECRET  # the settings themselves keep it
    again = loads_scenario(written)  # what the run folder holds still loads
    assert again.scenario.kafka.security.username == "alice"


def test_repr_and_rich_repr_never_show_the_password():
    scenario = _load(_literal()).scenario
    for text in (repr(scenario.kafka.security), repr(scenario.kafka), repr(scenario),
                 str(scenario), pretty_repr(scenario), pretty_repr(scenario.kafka.security)):
        assert SECRET not in text
        assert "***" in text
    resolved = ClientSecurity.resolve(scenario.kafka.security, base_dir=Path("."))
    assert SECRET not in repr(resolved) and SECRET not in resolved.describe()
    assert resolved.secrets == (SECRET,)


@pytest.mark.asyncio
async def test_missing_password_env_is_one_line_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("PPIPE_TEST_NOT_SET", raising=False)
    loaded = _load('[kafka.security]\nprotocol = "SASL_PLAINTEXT"\nsasl_mechanism = "PLAIN"\n'
                   'username = "alice"\npassword_env = "PPIPE_TEST_NOT_SET"\n', tmp_path)
    with pytest.raises(ScenarioError) as failure:
        await run_scenario(loaded, runs_root=tmp_path / "runs")
    message = str(failure.value)
    assert "\n" not in message
    assert "PPIPE_TEST_NOT_SET" in message and "password_env" in message
    assert failure.value.path == "$.kafka.security.password_env"
    assert not (tmp_path / "runs").exists()  # nothing started, no folder


def test_password_env_is_read_at_run_time():
    settings = _load(_literal().replace(f'password = "{SECRET}"', 'password_env = "PW"')).scenario
    security = settings.kafka.security
    with pytest.raises(SecretMissing):
        ClientSecurity.resolve(security, base_dir=Path("."), environ={})
    resolved = ClientSecurity.resolve(security, base_dir=Path("."), environ={"PW": SECRET})
    assert resolved.kafka_kwargs()["sasl_plain_password"] == SECRET


@pytest.mark.parametrize("security,expected", [
    ('{protocol = "SASL_SSL", username = "a", password = "x"}', "needs sasl_mechanism"),
    ('{protocol = "SASL_SSL", sasl_mechanism = "PLAIN", username = "a"}', "password_env"),
    ('{protocol = "SASL_SSL", sasl_mechanism = "PLAIN", password = "x"}', "needs username"),
    ('{protocol = "SASL_SSL", sasl_mechanism = "PLAIN", username = "a", password = "x", '
     'password_env = "X"}', "not both"),
    ('{protocol = "SSL", username = "a"}', "only for protocol SASL_"),
    ('{protocol = "SASL_PLAINTEXT", sasl_mechanism = "PLAIN", username = "a", password = "x", '
     'ca_file = "ca.pem"}', "only for protocol SSL"),
    ('{protocol = "SSL", key_file = "k.pem"}', "needs `cert_file`"),
    ('{protocol = "SASL_SSL", sasl_mechanism = "GSSAPI", username = "a", password = "x"}',
     "sasl_mechanism"),
    ('{protocol = "TLS"}', "protocol"),
])
def test_cross_field_checks(security, expected):
    with pytest.raises(ScenarioError) as failure:
        _load(f"security = {security}\n")
    assert expected in str(failure.value)
    assert '"x"' not in str(failure.value) and "'x'" not in str(failure.value)


def test_a_password_in_a_rejected_scenario_is_not_in_the_error():
    with pytest.raises(ScenarioError) as failure:
        _load(f'security = {{protocol = "SSL", password = "{SECRET}"}}\n')
    assert SECRET not in str(failure.value)


def test_security_needs_an_existing_cluster():
    text = _BASE.replace('bootstrap = "127.0.0.1:9093"', 'bootstrap = "embedded"')
    with pytest.raises(ScenarioError, match="existing cluster"):
        loads_scenario(text + 'security = {protocol = "SSL"}\n')


def test_files_resolve_against_the_scenario_folder_and_must_exist(tmp_path):
    with pytest.raises(ScenarioError, match="ca_file 'tls/ca.pem' not found"):
        _load('security = {protocol = "SSL", ca_file = "tls/ca.pem"}\n', tmp_path)
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_text("not read here\n")
    loaded = _load('security = {protocol = "SSL", ca_file = "tls/ca.pem", check_hostname = false}\n',
                   tmp_path)
    resolved = ClientSecurity.resolve(loaded.scenario.kafka.security, base_dir=loaded.base_dir)
    assert resolved.ca_file == str((tmp_path / "tls" / "ca.pem").resolve())
    assert resolved.env() == {"PROTOCOL": "SSL", "SSL_CHECK_HOSTNAME": "false",
                              "SSL_CAFILE": resolved.ca_file}


def test_pipeline_environment_round_trips_to_the_sdk():
    harness = ClientSecurity("SASL_SSL", sasl_mechanism="SCRAM-SHA-256", username="alice",
                             password=SECRET, ca_file="/etc/ca.pem", cert_file="/etc/c.pem",
                             key_file="/etc/k.pem", check_hostname=False)
    env = protocol.pipeline_env(bootstrap="b:9093", topics=protocol.Topics("p"), pipeline="x",
                                run_id="r", task="classification", security=harness.env())
    assert {k: v for k, v in env.items() if k.startswith("PPIPE_SECURITY_")} == {
        "PPIPE_SECURITY_PROTOCOL": "SASL_SSL",
        "PPIPE_SECURITY_SASL_MECHANISM": "SCRAM-SHA-256",
        "PPIPE_SECURITY_SASL_USERNAME": "alice",
        "PPIPE_SECURITY_SASL_PASSWORD": SECRET,
        "PPIPE_SECURITY_SSL_CAFILE": "/etc/ca.pem",
        "PPIPE_SECURITY_SSL_CERTFILE": "/etc/c.pem",
        "PPIPE_SECURITY_SSL_KEYFILE": "/etc/k.pem",
        "PPIPE_SECURITY_SSL_CHECK_HOSTNAME": "false",
    }
    config = PipelineConfig.from_env(env)
    pipeline = config.security
    for key in ("protocol", "sasl_mechanism", "username", "ca_file", "cert_file", "key_file",
                "check_hostname"):
        assert getattr(pipeline, key) == getattr(harness, key)
    assert pipeline.secrets == (SECRET,)
    assert SECRET not in repr(config)


def test_plaintext_is_the_default_and_adds_nothing():
    assert ClientSecurity.resolve(None, base_dir=Path(".")) is PLAINTEXT
    assert PLAINTEXT.kafka_kwargs() == {} and PLAINTEXT.env() == {}
    assert ClientSecurity.from_env({}) is PLAINTEXT
    assert _load("").scenario.kafka.security is None
    assert "security" not in dump_scenario(_load("").scenario)


def test_log_never_holds_a_secret_whoever_logs_it(tmp_path, capsys):
    import logging

    import structlog

    from ppipe_stream.run.logs import close_logging, configure_logging

    secret = 'pa"ss\\word-' + SECRET  # characters JSON escapes, too
    configure_logging(tmp_path, secrets=[secret, ""])
    try:
        log = structlog.get_logger("t")
        log.warning("login.detail", detail=f"with {secret}", nested={"pw": secret})
        try:
            raise ValueError(f"bad {secret}")
        except ValueError as exc:
            log.error("run.failed", exc_info=exc)
        logging.getLogger("aiokafka").error("connect %s failed", secret)
        try:
            raise RuntimeError(secret)
        except RuntimeError:
            logging.getLogger("aiokafka").exception("boom")
    finally:
        close_logging()
    written = (tmp_path / "log.jsonl").read_text()
    assert "login.detail" in written and "connect" in written and "***" in written
    assert SECRET not in written
    assert SECRET not in capsys.readouterr().err


@pytest.mark.asyncio
async def test_a_run_folders_redacted_copy_says_so_instead_of_failing_to_log_in(tmp_path):
    written = dump_scenario(_load(_literal()).scenario)
    copy = loads_scenario(written, file=str(tmp_path / "scenario.toml"), base_dir=tmp_path)
    with pytest.raises(ScenarioError, match="run folder's copy.*use password_env") as failure:
        await run_scenario(copy, runs_root=tmp_path / "runs")
    assert failure.value.path == "$.kafka.security.password"
