"""Runs against a real Apache Kafka that only speaks SASL_SSL (tests/integration/conftest.py's
``secure_kafka``): PLAIN and SCRAM logins score every event; a wrong password fails in one
line; the password is written nowhere (run folder, log, report, error); plaintext is refused."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from rich.console import Console

from ppipe_stream.bench.raw import raw_latency_ms
from ppipe_stream.brokers import create_topics
from ppipe_stream.errors import BrokerError
from ppipe_stream.run.orchestration import run_scenario
from ppipe_stream.scenario import load_scenario
from ppipe_stream.security import PLAINTEXT, ClientSecurity, describe_failure
from ppipe_stream.view.tail import tail_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 120

_SCENARIO = """
name = "secure"
seed = 3
[dataset]
source = "csv"
path = "rows.csv"
target = "label"
[load]
profile = "constant"
rate = 60
count = {events}
drain = "5s"
[labels]
delay = "200ms"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
[scoring]
deadline = "3s"
[kafka]
bootstrap = "{bootstrap}"
partitions = 2
[kafka.security]
{security}
"""


def _sasl_ssl(mechanism: str, password_line: str) -> str:
    return (f'protocol = "SASL_SSL"\nsasl_mechanism = "{mechanism}"\nusername = "alice"\n'
            f'{password_line}\nca_file = "tls/ca.pem"')


def _write(tmp_path: Path, broker, mechanism: str, password_line: str, *,
           security: str | None = None, bootstrap: str | None = None) -> Path:
    """A scenario folder: the rows (every label "echo", what the echo pipeline answers),
    the broker's CA and client certificate under relative paths, and the scenario file."""
    with open(tmp_path / "rows.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x", "label"])
        writer.writerows([i, "echo"] for i in range(EVENTS))
    (tmp_path / "tls").mkdir()
    for source in (broker.ca_file, broker.client_cert, broker.client_key):
        shutil.copy(source, tmp_path / "tls" / source.name)
    (tmp_path / "tls" / "ca.pem").chmod(0o644)
    path = tmp_path / "scenario.toml"
    path.write_text(_SCENARIO.format(events=EVENTS, bootstrap=bootstrap or broker.bootstrap,
                                     security=security or _sasl_ssl(mechanism, password_line)))
    return path


@pytest_asyncio.fixture(autouse=True)
async def _tls_closes():
    """A TLS connection's close handshake outlives the client's stop() by a moment:
    let it finish before the test's loop is closed (else an unclosed-socket warning
    surfaces at some later garbage collection)."""
    yield
    await asyncio.sleep(0.3)


def _hits(folder: Path, secret: str) -> list[str]:
    """Every file under ``folder`` whose bytes contain ``secret``."""
    needle = secret.encode()
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _password(broker) -> str:
    return broker.users["alice"]


def _client(broker, mechanism: str) -> ClientSecurity:
    return ClientSecurity("SASL_SSL", sasl_mechanism=mechanism, username="alice",
                          password=_password(broker), ca_file=str(broker.ca_file))


@pytest.mark.asyncio
@pytest.mark.parametrize("mechanism,literal", [("PLAIN", True), ("SCRAM-SHA-256", False),
                                               ("SCRAM-SHA-512", False)])
async def test_run_over_sasl_ssl_scores_every_event(secure_kafka, tmp_path, monkeypatch,
                                                    mechanism, literal):
    password = _password(secure_kafka)
    if literal:
        line = f'password = "{password}"'
    else:
        monkeypatch.setenv("PPIPE_TEST_KAFKA_PASSWORD", password)
        line = 'password_env = "PPIPE_TEST_KAFKA_PASSWORD"'
    loaded = load_scenario(_write(tmp_path, secure_kafka, mechanism, line))
    run_dir = tmp_path / "run"
    outcome = await run_scenario(loaded, out=run_dir)
    assert outcome.complete, outcome.error
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dispatch"]["events_sent"] == EVENTS
    status = summary["pipelines"]["echo"]["status"]
    assert status["correct"] == EVENTS, status
    assert status["missing"] == 0
    assert _hits(run_dir, password) == []
    written = (run_dir / "scenario.toml").read_text()
    assert ('password = "***"' in written) is literal
    assert (run_dir / "report.html").exists()
    # `ppipe tail --bootstrap` of the same run, logged in from PPIPE_SECURITY_* like a pipeline
    for key, value in _client(secure_kafka, mechanism).env().items():
        monkeypatch.setenv(f"PPIPE_SECURITY_{key}", value)
    shown = io.StringIO()
    last = await asyncio.to_thread(tail_topic, secure_kafka.bootstrap, summary["run_id"],
                                   console=Console(file=shown, width=120), timeout_s=60)
    assert last is not None and last.state == "done" and last.events_sent == EVENTS
    assert password not in shown.getvalue()


@pytest.mark.asyncio
async def test_wrong_password_fails_in_one_line_without_the_password(secure_kafka, tmp_path):
    wrong = "not-the-password-7f3a9c"
    loaded = load_scenario(_write(tmp_path, secure_kafka, "SCRAM-SHA-256", f'password = "{wrong}"'))
    run_dir = tmp_path / "run"
    with pytest.raises(BrokerError) as failure:
        await run_scenario(loaded, out=run_dir)
    message = str(failure.value)
    assert "\n" not in message
    assert "refused the SCRAM-SHA-256 login of user 'alice'" in message
    assert wrong not in message and _password(secure_kafka) not in message
    assert _hits(run_dir, wrong) == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and "refused" in summary["error"]


def test_wrong_password_cli_prints_one_line(secure_kafka, tmp_path):
    """As a user sees it: ``ppipe run`` exits 1 with one error line, no traceback."""
    wrong = "not-the-password-cli-41b2"
    path = _write(tmp_path, secure_kafka, "PLAIN", 'password_env = "PPIPE_TEST_KAFKA_PASSWORD"')
    env = {**os.environ, "PPIPE_TEST_KAFKA_PASSWORD": wrong, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "ppipe_stream", "run", str(path), "--plain",
                             "--out", str(tmp_path / "run")], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "refused the PLAIN login" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert _hits(tmp_path / "run", wrong) == []


@pytest.mark.asyncio
async def test_plaintext_client_is_refused(secure_kafka):
    """The broker really is secure: no plaintext client, no TLS client without a login."""
    producer = AIOKafkaProducer(bootstrap_servers=secure_kafka.bootstrap, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    with pytest.raises(BrokerError, match="closed the connection"):
        await create_topics(secure_kafka.bootstrap, [("t.plain", 1)], timeout=10)
    tls_only = ClientSecurity("SSL", ca_file=str(secure_kafka.ca_file))
    assert await describe_failure(secure_kafka.bootstrap, tls_only) is not None
    untrusted = ClientSecurity("SASL_SSL", sasl_mechanism="PLAIN", username="alice",
                               password=_password(secure_kafka))  # the system CAs: not ours
    why = await describe_failure(secure_kafka.bootstrap, untrusted)
    assert why is not None and "certificate" in why
    good = ClientSecurity("SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username="alice",
                          password=_password(secure_kafka), ca_file=str(secure_kafka.ca_file))
    assert await describe_failure(secure_kafka.bootstrap, good) is None
    assert PLAINTEXT.kafka_kwargs() == {}


@pytest.mark.asyncio
async def test_bench_raw_baseline_over_sasl_ssl(secure_kafka, topic_prefix):
    latencies = await raw_latency_ms(secure_kafka.bootstrap, topic=f"{topic_prefix}.raw", rate=100,
                                     seconds=1.0, partitions=1, warmup_s=0.2,
                                     security=_client(secure_kafka, "SCRAM-SHA-256"))
    assert len(latencies) >= 80 and float(latencies.max()) < 5000


@pytest.mark.asyncio
async def test_external_pipeline_is_shown_everything_but_the_password(secure_kafka, tmp_path,
                                                                      monkeypatch):
    """The external runner writes the environment to the run folder: the password is left
    out (the user sets it), and with it set the pipeline logs in and is scored."""
    import shlex

    import anyio

    password = _password(secure_kafka)
    monkeypatch.setenv("PPIPE_TEST_KAFKA_PASSWORD", password)
    path = _write(tmp_path, secure_kafka, "SCRAM-SHA-256",
                  'password_env = "PPIPE_TEST_KAFKA_PASSWORD"')
    text = path.read_text().replace('runtime = "process"\ncommand = ["python", "-m", '
                                    '"ppipe_stream.examples.echo"]',
                                    'runtime = "external"\nready_timeout = "60s"')
    path.write_text(text)
    loaded = load_scenario(path)
    run_dir = tmp_path / "run"
    env_file = run_dir / "pipeline-echo.env"
    outcome = None
    process = None

    async def run() -> None:
        nonlocal outcome
        outcome = await run_scenario(loaded, out=run_dir)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(60):
            while not env_file.exists():
                await anyio.sleep(0.1)
        shown = dict(shlex.split(line)[1].split("=", 1) for line in env_file.read_text().splitlines())
        assert "PPIPE_SECURITY_SASL_PASSWORD" not in shown
        assert shown["PPIPE_SECURITY_SASL_USERNAME"] == "alice"
        env = {**os.environ, **shown, "PPIPE_SECURITY_SASL_PASSWORD": password,
               "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen([sys.executable, "-m", "ppipe_stream.examples.echo"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert outcome is not None and outcome.complete
        assert outcome.summary["pipelines"]["echo"]["status"]["correct"] == EVENTS
        assert _hits(run_dir, password) == []
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.asyncio
@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "MTLS"])
async def test_run_over_sasl_plaintext_and_mutual_tls(secure_kafka, tmp_path, listener):
    """The other two protocols: SASL without TLS, and TLS with a client certificate
    (the broker's SSL listener requires one)."""
    if listener == "SASL_PLAINTEXT":
        bootstrap = secure_kafka.sasl_plaintext_bootstrap
        security = (f'protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "SCRAM-SHA-256"\n'
                    f'username = "alice"\npassword = "{_password(secure_kafka)}"')
    else:
        bootstrap = secure_kafka.mtls_bootstrap
        security = ('protocol = "SSL"\nca_file = "tls/ca.pem"\ncert_file = "tls/client.crt"\n'
                    'key_file = "tls/client.key"')
    loaded = load_scenario(_write(tmp_path, secure_kafka, "", "", security=security,
                                  bootstrap=bootstrap))
    run_dir = tmp_path / "run"
    outcome = await run_scenario(loaded, out=run_dir)
    assert outcome.complete, outcome.error
    status = outcome.summary["pipelines"]["echo"]["status"]
    assert status["correct"] == EVENTS and status["missing"] == 0, status
    assert _hits(run_dir, _password(secure_kafka)) == []


@pytest.mark.asyncio
async def test_mutual_tls_listener_refuses_a_client_without_a_certificate(secure_kafka):
    bare = ClientSecurity("SSL", ca_file=str(secure_kafka.ca_file))
    why = await describe_failure(secure_kafka.mtls_bootstrap, bare)
    assert why is not None and "client certificate" in why
    with_cert = ClientSecurity("SSL", ca_file=str(secure_kafka.ca_file),
                               cert_file=str(secure_kafka.client_cert),
                               key_file=str(secure_kafka.client_key))
    assert await describe_failure(secure_kafka.mtls_bootstrap, with_cert) is None
