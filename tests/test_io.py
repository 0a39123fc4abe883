"""The shared formatters of `mvnb.io`."""

from mvnb import io


def test_format_interval():
    assert io.format_interval(17.04, 12.5, 21.0) == "17.0 [12.5, 21.0]"
    assert io.format_interval(float("nan"), 0, 1) == "—"
