from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_BLOCK_DROP: _ClassVar[Action]
    ACTION_BLOCK_REJECT: _ClassVar[Action]
    ACTION_THROTTLE: _ClassVar[Action]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_IN: _ClassVar[Direction]
    DIRECTION_OUT: _ClassVar[Direction]
    DIRECTION_BOTH: _ClassVar[Direction]

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_ANY: _ClassVar[Protocol]
    PROTOCOL_TCP: _ClassVar[Protocol]
    PROTOCOL_UDP: _ClassVar[Protocol]
    PROTOCOL_ICMP: _ClassVar[Protocol]
ACTION_UNSPECIFIED: Action
ACTION_BLOCK_DROP: Action
ACTION_BLOCK_REJECT: Action
ACTION_THROTTLE: Action
DIRECTION_UNSPECIFIED: Direction
DIRECTION_IN: Direction
DIRECTION_OUT: Direction
DIRECTION_BOTH: Direction
PROTOCOL_ANY: Protocol
PROTOCOL_TCP: Protocol
PROTOCOL_UDP: Protocol
PROTOCOL_ICMP: Protocol

class SensorMessage(_message.Message):
    __slots__ = ("hello", "batch", "applied")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    batch: FlowBatch
    applied: AppliedState
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., batch: _Optional[_Union[FlowBatch, _Mapping]] = ..., applied: _Optional[_Union[AppliedState, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("host", "version", "protocol", "interfaces", "capture", "started_ns")
    HOST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    STARTED_NS_FIELD_NUMBER: _ClassVar[int]
    host: str
    version: str
    protocol: int
    interfaces: _containers.RepeatedCompositeFieldContainer[Interface]
    capture: CaptureSettings
    started_ns: int
    def __init__(self, host: _Optional[str] = ..., version: _Optional[str] = ..., protocol: _Optional[int] = ..., interfaces: _Optional[_Iterable[_Union[Interface, _Mapping]]] = ..., capture: _Optional[_Union[CaptureSettings, _Mapping]] = ..., started_ns: _Optional[int] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("name", "addresses")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class CaptureSettings(_message.Message):
    __slots__ = ("interfaces", "bpf", "snaplen", "interval_s", "dissection")
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    BPF_FIELD_NUMBER: _ClassVar[int]
    SNAPLEN_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    DISSECTION_FIELD_NUMBER: _ClassVar[int]
    interfaces: _containers.RepeatedScalarFieldContainer[str]
    bpf: str
    snaplen: int
    interval_s: int
    dissection: Dissection
    def __init__(self, interfaces: _Optional[_Iterable[str]] = ..., bpf: _Optional[str] = ..., snaplen: _Optional[int] = ..., interval_s: _Optional[int] = ..., dissection: _Optional[_Union[Dissection, _Mapping]] = ...) -> None: ...

class Dissection(_message.Message):
    __slots__ = ("enabled", "max_packets_per_s")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_PACKETS_PER_S_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    max_packets_per_s: float
    def __init__(self, enabled: _Optional[bool] = ..., max_packets_per_s: _Optional[float] = ...) -> None: ...

class FlowBatch(_message.Message):
    __slots__ = ("seq", "host", "interval_s", "first_start_ns", "last_start_ns", "flows", "chains", "sizes", "stats", "names")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    FIRST_START_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_START_NS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    host: str
    interval_s: int
    first_start_ns: int
    last_start_ns: int
    flows: Table
    chains: Table
    sizes: Table
    stats: Table
    names: Table
    def __init__(self, seq: _Optional[int] = ..., host: _Optional[str] = ..., interval_s: _Optional[int] = ..., first_start_ns: _Optional[int] = ..., last_start_ns: _Optional[int] = ..., flows: _Optional[_Union[Table, _Mapping]] = ..., chains: _Optional[_Union[Table, _Mapping]] = ..., sizes: _Optional[_Union[Table, _Mapping]] = ..., stats: _Optional[_Union[Table, _Mapping]] = ..., names: _Optional[_Union[Table, _Mapping]] = ...) -> None: ...

class Table(_message.Message):
    __slots__ = ("rows", "columns")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    def __init__(self, rows: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "dtype", "data", "strings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    STRINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    data: bytes
    strings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., data: _Optional[bytes] = ..., strings: _Optional[_Iterable[str]] = ...) -> None: ...

class AppliedState(_message.Message):
    __slots__ = ("version", "ruleset_id", "mode", "counters", "refused", "applied_ns", "drift", "expired", "error")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_NS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    version: int
    ruleset_id: str
    mode: str
    counters: _containers.RepeatedCompositeFieldContainer[RuleCounters]
    refused: _containers.RepeatedScalarFieldContainer[str]
    applied_ns: int
    drift: _containers.RepeatedScalarFieldContainer[str]
    expired: _containers.RepeatedScalarFieldContainer[str]
    error: str
    def __init__(self, version: _Optional[int] = ..., ruleset_id: _Optional[str] = ..., mode: _Optional[str] = ..., counters: _Optional[_Iterable[_Union[RuleCounters, _Mapping]]] = ..., refused: _Optional[_Iterable[str]] = ..., applied_ns: _Optional[int] = ..., drift: _Optional[_Iterable[str]] = ..., expired: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ...) -> None: ...

class RuleCounters(_message.Message):
    __slots__ = ("rule_id", "packets", "bytes", "matched_packets", "matched_bytes")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_PACKETS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_BYTES_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    packets: int
    bytes: int
    matched_packets: int
    matched_bytes: int
    def __init__(self, rule_id: _Optional[str] = ..., packets: _Optional[int] = ..., bytes: _Optional[int] = ..., matched_packets: _Optional[int] = ..., matched_bytes: _Optional[int] = ...) -> None: ...

class CollectorMessage(_message.Message):
    __slots__ = ("ack", "enforcement", "error")
    ACK_FIELD_NUMBER: _ClassVar[int]
    ENFORCEMENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ack: Ack
    enforcement: Enforcement
    error: Error
    def __init__(self, ack: _Optional[_Union[Ack, _Mapping]] = ..., enforcement: _Optional[_Union[Enforcement, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class Enforcement(_message.Message):
    __slots__ = ("version", "ruleset_id", "rules", "issued_ns")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    ISSUED_NS_FIELD_NUMBER: _ClassVar[int]
    version: int
    ruleset_id: str
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    issued_ns: int
    def __init__(self, version: _Optional[int] = ..., ruleset_id: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ..., issued_ns: _Optional[int] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("id", "policy", "match", "action", "rate_bytes_per_s", "burst_bytes", "expires_ns", "exempt_cidrs", "exempt_ports")
    ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RATE_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    BURST_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_NS_FIELD_NUMBER: _ClassVar[int]
    EXEMPT_CIDRS_FIELD_NUMBER: _ClassVar[int]
    EXEMPT_PORTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    policy: str
    match: Match
    action: Action
    rate_bytes_per_s: int
    burst_bytes: int
    expires_ns: int
    exempt_cidrs: _containers.RepeatedScalarFieldContainer[str]
    exempt_ports: _containers.RepeatedCompositeFieldContainer[PortRange]
    def __init__(self, id: _Optional[str] = ..., policy: _Optional[str] = ..., match: _Optional[_Union[Match, _Mapping]] = ..., action: _Optional[_Union[Action, str]] = ..., rate_bytes_per_s: _Optional[int] = ..., burst_bytes: _Optional[int] = ..., expires_ns: _Optional[int] = ..., exempt_cidrs: _Optional[_Iterable[str]] = ..., exempt_ports: _Optional[_Iterable[_Union[PortRange, _Mapping]]] = ...) -> None: ...

class Match(_message.Message):
    __slots__ = ("direction", "remote_cidrs", "local_cidrs", "ports", "protocol")
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CIDRS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CIDRS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    direction: Direction
    remote_cidrs: _containers.RepeatedScalarFieldContainer[str]
    local_cidrs: _containers.RepeatedScalarFieldContainer[str]
    ports: _containers.RepeatedCompositeFieldContainer[PortRange]
    protocol: Protocol
    def __init__(self, direction: _Optional[_Union[Direction, str]] = ..., remote_cidrs: _Optional[_Iterable[str]] = ..., local_cidrs: _Optional[_Iterable[str]] = ..., ports: _Optional[_Iterable[_Union[PortRange, _Mapping]]] = ..., protocol: _Optional[_Union[Protocol, str]] = ...) -> None: ...

class PortRange(_message.Message):
    __slots__ = ("low", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: int
    high: int
    def __init__(self, low: _Optional[int] = ..., high: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("reason", "seq")
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    reason: str
    seq: int
    def __init__(self, reason: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("report", "params_json")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    report: str
    params_json: str
    def __init__(self, report: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

class QueryReply(_message.Message):
    __slots__ = ("result_json", "columns")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, result_json: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...
