"""The example alerts in docs/siem.md are what the code writes, so the docs cannot drift.

Each format's example is the fenced ```json block right after an ``<!-- example: NAME -->``
marker; it must equal, as parsed JSON, that format's document for the fixed Zeek alert of
tests/alerts/conftest.py.  After a deliberate change to a format, regenerate the blocks with

    python -m tests.alerts.test_siem_docs
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_od.alerts import ecs, native, ocsf
from tests.alerts.conftest import model_info, zeek_alert

DOC = Path(__file__).resolve().parents[2] / "docs" / "siem.md"
FORMATS = {"native": native.document, "ecs": ecs.document, "ocsf": ocsf.document}
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\s*```json\n(.*?)\n```", re.DOTALL)


def generated() -> dict[str, bytes]:
    """Each format's document for the example alert, as the worker writes it (orjson)."""
    alert, model = zeek_alert(), model_info()
    return {
        name: orjson.dumps(document(alert, model), option=orjson.OPT_INDENT_2)
        for name, document in FORMATS.items()
    }


def documented() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, body in EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        assert name not in found, f"docs/siem.md has two examples for {name!r}"
        found[name] = json.loads(body)
    return found


def test_every_format_has_one_example():
    assert sorted(documented()) == sorted(FORMATS)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_the_example_is_what_the_code_writes(name):
    assert documented()[name] == json.loads(generated()[name]), (
        f"docs/siem.md's {name} example is stale: python -m tests.alerts.test_siem_docs"
    )


def main() -> None:
    """Print the examples, marker and fence included, ready to paste into docs/siem.md."""
    for name, text in generated().items():
        print(f"<!-- example: {name} -->\n```json\n{text.decode()}\n```\n")


if __name__ == "__main__":
    main()
