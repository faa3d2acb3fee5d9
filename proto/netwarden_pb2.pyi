from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ()
    def __init__(self) -> None: ...

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
    __slots__ = ()
    def __init__(self) -> None: ...

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
