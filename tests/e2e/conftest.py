"""The e2e tests may use the session brokers too (``ppipe tail`` of a scores topic)."""

from tests.integration.conftest import broker, kafka_broker, tansu_broker  # noqa: F401
