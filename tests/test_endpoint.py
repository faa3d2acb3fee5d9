"""HOST:PORT endpoints."""

from __future__ import annotations

import pytest

from netwarden.endpoint import split_endpoint


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:50051", ("127.0.0.1", 50051)),
    ("collector.example:9", ("collector.example", 9)),
    ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ("[::]:50051", ("::", 50051)),
])
def test_split(text: str, expected: tuple[str, int]) -> None:
    assert split_endpoint(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("localhost", r"is not HOST:PORT"),
    ("2001:db8::1:443", r"is not HOST:PORT \(an IPv6 address goes in brackets"),
    ("h:0", r"port 0 is out of range"),
    ("h:70000", r"port 70000 is out of range"),
    ("", r"is not HOST:PORT"),
])
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_endpoint(text)


def test_listen_may_ask_for_any_port() -> None:
    assert split_endpoint("127.0.0.1:0", allow_port_zero=True) == ("127.0.0.1", 0)
