"""A minimal GGUF (v3) writer and metadata reader.

The stand-in's synthetic model blobs are real GGUF files holding only
metadata (no tensors), followed by filler bytes.  Ollama reads model details
from this metadata, so the stand-in does the same.
"""

import struct
from typing import Any, BinaryIO, Dict, List, Tuple

MAGIC = b"GGUF"
VERSION = 3
ALIGNMENT = 32

T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)

_SCALARS = {
    T_UINT8: "<B",
    T_INT8: "<b",
    T_UINT16: "<H",
    T_INT16: "<h",
    T_UINT32: "<I",
    T_INT32: "<i",
    T_FLOAT32: "<f",
    T_BOOL: "<?",
    T_UINT64: "<Q",
    T_INT64: "<q",
    T_FLOAT64: "<d",
}

# A typed value: (gguf type, value) or (T_ARRAY, (element type, [values])).
TypedValue = Tuple[int, Any]


def _pack_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _pack_value(vtype: int, value: Any) -> bytes:
    if vtype == T_STRING:
        return _pack_string(value)
    if vtype == T_ARRAY:
        etype, items = value
        out = struct.pack("<IQ", etype, len(items))
        return out + b"".join(_pack_value(etype, item) for item in items)
    return struct.pack(_SCALARS[vtype], value)


def encode_header(kv: List[Tuple[str, TypedValue]]) -> bytes:
    """GGUF header with the given metadata and no tensors, padded to the alignment."""
    out = bytearray(MAGIC + struct.pack("<IQQ", VERSION, 0, len(kv)))
    for key, (vtype, value) in kv:
        out += _pack_string(key) + struct.pack("<I", vtype) + _pack_value(vtype, value)
    out += b"\0" * (-len(out) % ALIGNMENT)
    return bytes(out)


class GGUFError(ValueError):
    pass


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("unexpected EOF")
    return data


def _remaining(f: BinaryIO) -> int:
    here = f.tell()
    end = f.seek(0, 2)
    f.seek(here)
    return end - here


def _read_value(f: BinaryIO, vtype: int) -> Any:
    if vtype == T_STRING:
        (length,) = struct.unpack("<Q", _read(f, 8))
        # A garbage length must not become a huge allocation (MemoryError): it is a bad file.
        if length > _remaining(f):
            raise GGUFError("invalid string length %d" % length)
        return _read(f, length).decode("utf-8", "replace")
    if vtype == T_ARRAY:
        etype, count = struct.unpack("<IQ", _read(f, 12))
        return [_read_value(f, etype) for _ in range(count)]
    fmt = _SCALARS.get(vtype)
    if fmt is None:
        raise GGUFError("invalid type: %d" % vtype)
    (value,) = struct.unpack(fmt, _read(f, struct.calcsize(fmt)))
    return value


def read_metadata(path: str) -> Dict[str, Any]:
    """Read the key/value metadata of a GGUF file (tensors are not read)."""
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise GGUFError("invalid file magic")
        version, _tensors, count = struct.unpack("<IQQ", _read(f, 20))
        if version < 2:
            raise GGUFError("unsupported gguf version %d" % version)
        kv: Dict[str, Any] = {}
        for _ in range(count):
            key = _read_value(f, T_STRING)
            (vtype,) = struct.unpack("<I", _read(f, 4))
            kv[key] = _read_value(f, vtype)
        return kv


def is_gguf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}


def file_type_name(kv: Dict[str, Any]) -> str:
    value = kv.get("general.file_type")
    if isinstance(value, int) and value > 0:
        return FILE_TYPES.get(value, "unknown")
    return "unknown"
