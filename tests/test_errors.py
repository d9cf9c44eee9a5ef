"""Every exception stream-od raises on purpose derives from StreamODError (one root), and keeps
the built-in base callers already catch."""

from __future__ import annotations

import pytest

from stream_od.artifact import ArtifactError
from stream_od.detector._neural import NonFiniteLossError
from stream_od.detector.base import NotFittedError
from stream_od.errors import ConfigError, FatalWorkerError, StreamODError
from stream_od.registry.errors import RegistryError
from stream_od.schema import SchemaError


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (SchemaError, ValueError),
        (NotFittedError, RuntimeError),
        (NonFiniteLossError, FloatingPointError),
        (ArtifactError, Exception),
        (ConfigError, Exception),
        (FatalWorkerError, Exception),
        (RegistryError, Exception),
    ],
)
def test_one_root(cls, builtin):
    assert issubclass(cls, StreamODError) and issubclass(cls, builtin)
