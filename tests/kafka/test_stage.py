"""stream_od.kafka.stage: what a windows stage writes on with each record.  (Its records end to
end, through a real broker: tests/integration/test_windows_pipeline.py.)"""

from stream_od.kafka.stage import HEADERS_DROPPED, passed_headers


def test_a_windows_stage_passes_headers_on_unless_they_are_too_large():
    small = [("label", b"Malicious"), ("seq", b"12")]
    assert passed_headers(small) == small and passed_headers(None) is None
    big = [("trace", b"x" * 20_000), ("seq", b"12")]
    assert passed_headers(big) == [(HEADERS_DROPPED, b"2 headers, 20010 bytes")]
