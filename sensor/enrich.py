"""Enrichment: labels added to flow records after accounting.

An :class:`Enricher` sees every packet the accountant accounts (:meth:`Enricher.observe`,
called by the :class:`~netwarden.sensor.accountant.Accountant` with the decoded view of
the batch) and fills its columns of every :class:`~netwarden.sensor.records.FlowBatch`
before the batch leaves the sensor (:meth:`Enricher.enrich`). Enrichers own disjoint
columns: app labels (``app``, ``app_name``, ``app_source`` and the ``names`` table, see
:mod:`netwarden.sensor.apps`) and process attribution (``process``, ``pid`` and the
``local_bytes``/``process_bytes`` statistics, see :mod:`netwarden.sensor.processes`).

The offline pipeline and the live sensor run the same enrichers; both call
:meth:`Enrichers.enrich` on every batch they hand out, then :meth:`Enrichers.close`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from netwarden.sensor.records import FlowBatch


@dataclasses.dataclass(frozen=True)
class PacketView:
    """One accounted batch as enrichers see it.

    Per packet (index ``i`` of the batch): ``ts_ns``, ``frame_no`` (capture-wide, 1-based)
    and the raw bytes ``buf[offset[i]:offset[i] + caplen[i]]`` with ``linktype[i]`` and
    ``wirelen[i]``. Per event (one per IP header, after fragment reassembly): ``row`` (the
    packet index), ``layer``, ``stream`` (the record's ``stream``; 0 without TCP/UDP),
    ``ip_proto``, ports, addresses as 64-bit halves, ``direction`` and ``start_ns``.
    """

    buf: np.ndarray
    offset: np.ndarray
    caplen: np.ndarray
    wirelen: np.ndarray
    linktype: np.ndarray
    ts_ns: np.ndarray
    frame_no: np.ndarray
    row: np.ndarray
    layer: np.ndarray
    stream: np.ndarray
    ip_proto: np.ndarray
    src_port: np.ndarray
    dst_port: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    direction: np.ndarray
    start_ns: np.ndarray


class Enricher(Protocol):
    """A stage that labels records; see the module doc."""

    def observe(self, view: PacketView) -> None:
        """Look at an accounted batch (cheap: called on the capture path)."""

    def enrich(self, batch: FlowBatch) -> None:
        """Fill this enricher's columns of ``batch`` in place."""

    def close(self) -> None:
        """Release what the enricher holds (threads, child processes, files)."""


class Enrichers:
    """The enrichers a sensor runs, in order."""

    def __init__(self, stages: Sequence[Enricher] = ()) -> None:
        self.stages = list(stages)

    def __bool__(self) -> bool:
        return bool(self.stages)

    def observe(self, view: PacketView) -> None:
        for s in self.stages:
            s.observe(view)

    def enrich(self, batch: FlowBatch) -> None:
        for s in self.stages:
            s.enrich(batch)

    def close(self) -> None:
        for s in self.stages:
            s.close()
