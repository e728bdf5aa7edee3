"""TFRecord files and the protobuf wire format, without TensorFlow.

A TFRecord file is a sequence of records: uint64 length (little endian), uint32 masked
CRC32C of those 8 bytes, the data, uint32 masked CRC32C of the data. Only what the
NAS-Bench-101 files need is here: reading/writing records and decoding/encoding
protobuf messages as ``{field_number: [values]}``.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c_python(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord uses, in pure Python (~1 MB/s)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:  # google-crc32c's C implementation: ~5 GB/s, so every record of a 500 MB file is checked
    from google_crc32c import value as crc32c
except ImportError:  # pragma: no cover - a dependency; the fallback keeps short files readable
    crc32c = crc32c_python


def masked_crc(data: bytes) -> int:
    """The CRC as TFRecord stores it: rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class RecordError(ValueError):
    """The file is not a well-formed TFRecord file."""


def read_records(stream: BinaryIO, verify_data: bool = True) -> Iterator[bytes]:
    """Yield each record's bytes. The length checksum is always verified (it catches a file
    that is not TFRecord or is cut short); the data checksum unless ``verify_data`` is False."""
    offset = 0
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise RecordError(f"truncated record header at byte {offset}")
        length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
        if masked_crc(length_bytes) != length_crc:
            raise RecordError(f"bad length checksum at byte {offset} (not a TFRecord file, or corrupt)")
        (length,) = struct.unpack("<Q", length_bytes)
        data = stream.read(length)
        footer = stream.read(4)
        if len(data) < length or len(footer) < 4:
            raise RecordError(f"truncated record at byte {offset}")
        if verify_data and masked_crc(data) != struct.unpack("<I", footer)[0]:
            raise RecordError(f"bad data checksum in the record at byte {offset}")
        offset += 16 + length
        yield data


def write_record(stream: BinaryIO, data: bytes) -> None:
    length = struct.pack("<Q", len(data))
    stream.write(length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data)))


# --- protobuf wire format ------------------------------------------------------------
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_message(buf: bytes) -> dict[int, list]:
    """Fields of a protobuf message: varints as int, fixed64 as float (double), fixed32 as
    float, length-delimited as bytes (decode nested messages again)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _FIXED64:
            (value,), pos = struct.unpack_from("<d", buf, pos), pos + 8
        elif wire == _BYTES:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
            if len(value) < size:
                raise ValueError("truncated length-delimited field")
        elif wire == _FIXED32:
            (value,), pos = struct.unpack_from("<f", buf, pos), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated message")
        fields.setdefault(number, []).append(value)
    return fields


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_field(number: int, value) -> bytes:
    """One field: int -> varint, float -> double, bytes/str -> length-delimited."""
    if isinstance(value, bool) or isinstance(value, int):
        return _varint(number << 3 | _VARINT) + _varint(int(value))
    if isinstance(value, float):
        return _varint(number << 3 | _FIXED64) + struct.pack("<d", value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(number << 3 | _BYTES) + _varint(len(value)) + bytes(value)
