"""ppipe_stream: stream a dataset into ML pipelines over Kafka and score them.

The Data Dispatcher publishes timed event streams, user pipelines answer on
their own topics, and the scorer measures latency, throughput and accuracy.
"""

from .errors import (
    BrokerError,
    DatasetError,
    PipelineError,
    PpipeError,
    RunError,
    ScenarioError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "BrokerError",
    "DatasetError",
    "PipelineError",
    "PpipeError",
    "RunError",
    "ScenarioError",
    "UsageError",
    "__version__",
]
