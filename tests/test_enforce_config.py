"""The ``[enforce]`` config section: defaults and strictness."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from netwarden.sensor.enforce.config import EnforceConfig


def test_defaults_are_safe() -> None:
    cfg = EnforceConfig()
    assert (cfg.mode, cfg.hooks, cfg.management_ports, cfg.exempt_loopback) == (
        "off", ["input", "output"], [22], True)


@pytest.mark.parametrize(("kw", "message"), [
    ({"mode": "enforce"}, "mode"),
    ({"hooks": ["input", "input"]}, "a hook is listed twice"),
    ({"hooks": ["prerouting"]}, "hooks.0"),
    ({"management_ports": [0]}, "management_ports.0"),
    ({"management_cidrs": ["10.0.0.1/8"]}, "has host bits set"),
    ({"reconcile_s": 0.1}, "reconcile_s"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_values_are_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EnforceConfig(**kw)  # type: ignore[arg-type]
