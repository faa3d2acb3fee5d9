"""Reports over stored flow records, equal to tshark's statistics for the same frames.

Each report is a function ``(store, params) -> ReportResult``; :mod:`.output` renders a
result as a table, JSON or CSV. The SQL runs unchanged on ClickHouse 18.16 and modern
servers (and chdb).
"""

from __future__ import annotations

from .conversations import ConversationsParams, conversations
from .filters import Filters, parse_time
from .io import IoParams, io
from .ports import ports
from .protocols import ProtocolsParams, protocols
from .ranking import TopParams
from .result import QueryStore, ReportResult
from .sizes import SizesParams, sizes
from .talkers import talkers
from .ttl import TtlParams, ttl

__all__ = [
    "ConversationsParams",
    "Filters",
    "IoParams",
    "ProtocolsParams",
    "QueryStore",
    "ReportResult",
    "SizesParams",
    "TopParams",
    "TtlParams",
    "conversations",
    "io",
    "parse_time",
    "ports",
    "protocols",
    "sizes",
    "talkers",
    "ttl",
]
