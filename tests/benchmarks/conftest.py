"""The Zeek artifacts of the integration tests, for the benchmarks' tests too."""

from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    zeek_mahalanobis_artifact,
    zeek_replay_path,
    zeek_windows_artifact,
)
