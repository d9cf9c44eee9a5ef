"""A dead letter is always writable: what fits, plus sizes and digests of what did not."""

from __future__ import annotations

import hashlib

from stream_od.alerts import Origin
from stream_od.kafka import dead_letters as dl

ORIGIN = Origin("in", 2, 41, 1_700_000_000_000, b"k")


def _own():
    return dl.own_headers(ORIGIN, "too_large", "2000000 bytes > max_record_bytes 65536")


def test_a_record_that_fits_is_kept_whole_with_its_headers_first():
    value, key, headers = dl.fit(b"{}", b"k", _own(), [("label", b"normal")], 900_000)
    assert (value, key) == (b"{}", b"k")
    assert headers[0] == ("label", b"normal") and dict(headers)[dl.REASON] == b"too_large"
    assert dl.TRUNCATED not in dict(headers)


def test_an_oversized_value_keeps_a_prefix_its_size_and_digest():
    big = bytes(range(256)) * 8000  # 2 MB
    value, key, headers = dl.fit(big, b"k", _own(), None, 900_000)
    h = dict(headers)
    assert value == big[: dl.PREFIX_BYTES] and key == b"k"
    assert h[dl.ORIGINAL_SIZE] == str(len(big)).encode()
    assert h[dl.ORIGINAL_SHA256] == hashlib.sha256(big).hexdigest().encode()
    assert h[dl.TRUNCATED] == b"value" and h[dl.SOURCE_OFFSET] == b"41"
    assert dl.record_size(value, key, headers) <= 900_000


def test_a_huge_key_and_huge_headers_are_dropped_and_described():
    key = b"k" * 2_000_000
    original = [("trace", b"x" * 1_500_000), ("label", b"normal")]
    value, out_key, headers = dl.fit(b"{}", key, _own(), original, 900_000)
    h = dict(headers)
    assert out_key is None and value == b"{}"
    assert h[dl.ORIGINAL_KEY_SIZE] == b"2000000"
    assert h[dl.ORIGINAL_KEY_SHA256] == hashlib.sha256(key).hexdigest().encode()
    assert h[dl.ORIGINAL_HEADERS].startswith(b"2 headers")
    assert h[dl.TRUNCATED] == b"key,headers" and "trace" not in h
    assert dl.record_size(value, out_key, headers) <= 900_000
