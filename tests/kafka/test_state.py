"""stream_od.kafka.state: what stops a worker that cannot read a partition's state back.  (The
reading itself, through a real broker: tests/integration/test_worker_windows.py and
test_worker_alerts.py, after kill -9; tests/integration/secured/test_worker_state.py, without
each ACL it needs.)"""

import pytest
from confluent_kafka import KafkaError, KafkaException

from stream_od.config import load_settings
from stream_od.kafka.state import StateReader
from stream_od.metrics import WorkerMetrics


@pytest.mark.parametrize(
    ("code", "exit_code", "names"),
    [
        (KafkaError.GROUP_AUTHORIZATION_FAILED, 3, "DESCRIBE on Group:"),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, 3, "grant READ on Topic:in"),
        (KafkaError._TRANSPORT, 4, "brokers reachable"),
    ],
)
def test_state_that_cannot_be_read_back_stops_the_worker_saying_why(code, exit_code, names):
    """A missing permission will not clear by itself: exit 3 naming the ACL, not exit 4 ("the
    brokers are away") with a message about another one."""
    reader = StateReader(load_settings(group_id="workers"), WorkerMetrics())
    error = reader.failed(KafkaException(KafkaError(code, "refused")), "in[0]", "in")
    assert error.exit_code == exit_code and names in str(error)
