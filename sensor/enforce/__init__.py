"""Enforcement on the sensor: the collector's blocks and throttles as iptables rules.

Public API (the agent calls it; see :mod:`.enforcer`)::

    from netwarden.sensor.enforce import EnforceConfig, Enforcer

Modules: :mod:`.config` (the ``[enforce]`` section), :mod:`.rules` (wire model,
validation, ruleset id), :mod:`.safety` (lock-out protection), :mod:`.iptables`
(rendering, atomic apply, counters, drift), :mod:`.state` (state file),
:mod:`.enforcer` (the component).
"""

from __future__ import annotations

from .config import EnforceConfig
from .enforcer import Enforcer
from .rules import Desired, Refusal, Rule, RuleError, parse_enforcement, ruleset_id

__all__ = ["Desired", "EnforceConfig", "Enforcer", "Refusal", "Rule", "RuleError",
           "parse_enforcement", "ruleset_id"]
