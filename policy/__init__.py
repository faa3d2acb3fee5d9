"""Data-plan policies: who may send or receive how much of what, and what happens then.

Policies are written in YAML files (format: README, "Data-plan policies") and loaded with
:func:`load_policies`, which checks them strictly and reports every problem at once as
``FILE:LINE: key.path: message``. Modules:

* :mod:`~netwarden.policy.model`: the typed, immutable model (:class:`PolicySet`, ...).
* :mod:`~netwarden.policy.units`: byte counts, rates, percentages, durations.
* :mod:`~netwarden.policy.nodes`: YAML nodes with line numbers, problem collection.
* :mod:`~netwarden.policy.parse`: checking one file, with ``parse_who`` (groups,
  ``who``), ``parse_what`` (``what``, ``exempt``), ``parse_period``, ``parse_tiers``
  (``quota``, ``tiers``) and ``parse_values`` (shared readers);
  :mod:`~netwarden.policy.load`: loading and cross-checking several.
* :mod:`~netwarden.policy.period`: the current period's start and end, next reset.
* :mod:`~netwarden.policy.dump`: writing policies back as YAML, defaults included.
"""

from .dump import dump_policies
from .load import PolicyError, check_policies, load_policies
from .model import Policy, PolicySet
from .nodes import Problem
from .period import next_reset, period_bounds

__all__ = [
    "Policy",
    "PolicyError",
    "PolicySet",
    "Problem",
    "check_policies",
    "dump_policies",
    "load_policies",
    "next_reset",
    "period_bounds",
]
