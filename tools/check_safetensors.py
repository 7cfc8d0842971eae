#!/usr/bin/python3
"""Read and write safetensors files independently of mixprec, with numpy and the standard library only.

Python's ``safetensors`` package is not installable here, so this script reimplements what it does:
reading validates a file exactly as the reference implementation (``safetensors/src/tensor.rs``,
``SafeTensors::read_metadata`` and ``Metadata::validate``) does, and writing lays a file out exactly as
its ``serialize`` does (tensors sorted by dtype alignment, descending, then by name; compact JSON header
with ``__metadata__`` first and the tensors in data order; header padded with spaces to a multiple of
8). Run it with the Debian python that has numpy:

    /usr/bin/python3 tools/check_safetensors.py read FILE [--values] [--max-values N]
        Validate FILE and print, as JSON: the header size, ``__metadata__`` (the ``mixprec`` key, if
        present, is also shown parsed), and per tensor (in data order) its dtype, shape, offsets,
        sha256 of its bytes, sum/min/max of its finite values and, for small tensors (or with
        --values), its values and raw bits (hex). F16 is decoded with numpy's float16, BF16 as
        uint16 << 16 viewed as float32, F32/F64/I32/I64/BOOL with numpy. Exit status 1 with
        {"error": ...} if the file is invalid (the reference error name, then an explanation).

    /usr/bin/python3 tools/check_safetensors.py write OUT.safetensors [--expected OUT.json]
        Write the fixed test set (special values of every dtype mixprec supports: +-0, +-inf, NaN
        payloads, subnormals, extremes; a 0-d and an empty tensor; a non-ASCII name; string
        metadata) from numpy arrays, and the expected names, dtypes, shapes, bits and values as JSON.
        Deterministic: running it twice gives identical files. test/fixtures/io/ holds its output:

        /usr/bin/python3 tools/check_safetensors.py write test/fixtures/io/numpy_written.safetensors \\
            --expected test/fixtures/io/numpy_written.expected.json
"""

import argparse
import hashlib
import json
import math
import re
import struct
import sys

import numpy as np

MAX_HEADER_SIZE = 100_000_000

# The reference ``Dtype`` enum in declaration order (increasing alignment) and item sizes.
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
            "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
NUMPY = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
         "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8"}
BITS = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}


class SafeTensorError(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def is_usize(x):
    return type(x) is int and x >= 0


def read_metadata(buffer):
    """(n, metadata, tensors sorted by offsets) as the reference ``read_metadata``, or SafeTensorError."""
    if len(buffer) < 8:
        raise SafeTensorError("HeaderTooSmall", f"{len(buffer)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", buffer[:8])
    if n > MAX_HEADER_SIZE:
        raise SafeTensorError("HeaderTooLarge", f"header length {n} > {MAX_HEADER_SIZE}")
    stop = n + 8
    if stop > len(buffer):
        raise SafeTensorError("InvalidHeaderLength", f"header length {n} but only {len(buffer) - 8} bytes follow")
    try:
        string = buffer[8:stop].decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafeTensorError("InvalidHeader", f"header is not UTF-8 ({e})")
    # safetensors >= 0.4 also requires the header to start with '{' (InvalidHeaderStart).
    if not string.startswith("{"):
        raise SafeTensorError("InvalidHeaderStart", f"header starts with {string[:12]!r}")
    try:
        header = json.loads(string)
    except ValueError as e:
        raise SafeTensorError("InvalidHeaderDeserialization", f"header is not JSON ({e})")
    # serde: a map with an optional "__metadata__" (map of strings or null) and TensorInfo entries.
    if not isinstance(header, dict):
        raise SafeTensorError("InvalidHeaderDeserialization", "header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise SafeTensorError("InvalidHeaderDeserialization", "__metadata__ is not an object of strings")
    tensors = []
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise SafeTensorError("InvalidHeaderDeserialization", f"{name!r}: expected dtype, shape, data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in ITEMSIZE:
            raise SafeTensorError("InvalidHeaderDeserialization", f"{name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(is_usize(d) for d in shape):
            raise SafeTensorError("InvalidHeaderDeserialization", f"{name!r}: bad shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_usize(o) for o in offsets):
            raise SafeTensorError("InvalidHeaderDeserialization", f"{name!r}: bad data_offsets {offsets!r}")
        tensors.append((name, dtype, shape, tuple(offsets)))
    tensors.sort(key=lambda t: t[3])
    # Metadata::validate
    start = 0
    for name, dtype, shape, (s, e) in tensors:
        if s != start or e < s:
            raise SafeTensorError("InvalidOffset", f"{name!r}: data_offsets [{s}, {e}], expected to begin at {start}")
        start = e
        nbytes = math.prod(shape) * ITEMSIZE[dtype]
        if e - s != nbytes:
            raise SafeTensorError("TensorInvalidInfo", f"{name!r}: {e - s} bytes for {dtype} {shape} ({nbytes} expected)")
    if start + 8 + n != len(buffer):
        raise SafeTensorError("MetadataIncompleteBuffer", f"tensors cover {start} bytes, {len(buffer) - 8 - n} follow the header")
    return n, metadata, tensors


def decode(dtype, shape, raw):
    """The values as a numpy array (BF16 widened to float32), or None for dtypes numpy cannot hold."""
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype in NUMPY:
        return np.frombuffer(raw, dtype=NUMPY[dtype]).reshape(shape)
    return None


def json_number(x):
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def cmd_read(args):
    with open(args.file, "rb") as f:
        buffer = f.read()
    try:
        n, metadata, tensors = read_metadata(buffer)
    except SafeTensorError as e:
        print(json.dumps({"file": args.file, "error": e.kind, "detail": e.detail}, indent=2))
        return 1
    out = {"file": args.file, "bytes": len(buffer), "header_size": n, "header_size_multiple_of_8": n % 8 == 0,
           "metadata": metadata, "tensors": []}
    if metadata and "mixprec" in metadata:
        out["mixprec_state"] = json.loads(metadata["mixprec"])
    data = buffer[8 + n:]
    for name, dtype, shape, (s, e) in tensors:
        raw = data[s:e]
        entry = {"name": name, "dtype": dtype, "shape": shape, "data_offsets": [s, e],
                 "aligned": (8 + n + s) % ITEMSIZE[dtype] == 0, "sha256": hashlib.sha256(raw).hexdigest()}
        values = decode(dtype, shape, raw)
        if values is not None:
            flat = values.reshape(-1)
            if dtype != "BOOL":
                finite = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
                entry["finite"] = int(finite.size)
                entry["sum"] = json_number(np.sum(finite, dtype=np.float64)) if finite.size else 0
                if finite.size:
                    entry["min"] = json_number(finite.min())
                    entry["max"] = json_number(finite.max())
            if args.values or flat.size <= args.max_values:
                entry["values"] = [json_number(x) for x in flat]
                if dtype.startswith("F") or dtype == "BF16":
                    width = ITEMSIZE[dtype]
                    entry["bits"] = [f"{b:0{2 * width}x}" for b in np.frombuffer(raw, dtype=BITS[width])]
        out["tensors"].append(entry)
    print(compact_json(out))
    return 0


def compact_json(value):
    """Indented JSON with lists of numbers and strings kept on one line."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return re.sub(r"\[\s*\n\s*([^\[\]{}]*?)\s*\]", lambda m: "[" + re.sub(r",\s*\n\s*", ", ", m.group(1)) + "]", text)


# ------------------------------------------------------------------------------------------------
# Writing


def serialize(tensors, metadata):
    """The reference ``serialize``: tensors is {name: (dtype, shape, raw little-endian bytes)}."""
    items = sorted(tensors.items(), key=lambda kv: (-DTYPE_ORDER.index(kv[1][0]), kv[0].encode("utf-8")))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape, raw) in items:
        assert len(raw) == math.prod(shape) * ITEMSIZE[dtype], name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(raw for _, (_, _, raw) in items)


def bf16_round(x):
    """float32 -> bfloat16 bits, round to nearest even (NaN kept quiet)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def fixture_arrays():
    f32 = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, 1.4e-45, 3.4028235e38, 1e-40, 0.1, 16777217.0],
                   dtype="<f4").reshape(3, 4)
    f32_bits = f32.reshape(-1).view(np.uint32).copy()
    f32_bits[6] = 0xFFC00123  # a negative NaN with a payload
    f16_bits = np.array([0x0000, 0x8000, 0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x3555,
                         0x7C01, 0xFE01], dtype="<u2").reshape(2, 7)
    bf16_bits = np.array([0x0000, 0x8000, 0x3F80, 0xBF80, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x3EAB,
                          0x7F81, 0xFFC1], dtype="<u2").reshape(2, 7)
    bf16_rounded = bf16_round(np.array([1 / 3, math.pi, -2.5, 1e30, 1e-30, 65504.0], dtype=np.float32)).reshape(2, 3)
    f64 = np.array([math.pi, -0.0, 1e308, 5e-324, np.nan, -np.inf], dtype="<f8")
    i32 = np.array([-2147483648, 2147483647, 0, -1, 42], dtype="<i4")
    mask = np.array([[True, False, True], [False, False, True]], dtype=np.bool_)
    return {
        # name: (safetensors dtype, shape, little-endian bytes)
        "f32.specials": ("F32", [3, 4], f32_bits.astype("<u4").tobytes()),
        "f16.specials": ("F16", [2, 7], f16_bits.tobytes()),
        "bf16.specials": ("BF16", [2, 7], bf16_bits.tobytes()),
        "bf16.rounded": ("BF16", [2, 3], bf16_rounded.astype("<u2").tobytes()),
        "f64.values": ("F64", [6], f64.tobytes()),
        "i32.values": ("I32", [5], i32.tobytes()),
        "bool.mask": ("BOOL", [2, 3], mask.tobytes()),
        "scalar": ("F32", [], np.array(2.5, dtype="<f4").tobytes()),
        "empty": ("F16", [0, 3], b""),
        "ünï.çødé": ("F32", [1], np.array([-7.25], dtype="<f4").tobytes()),
    }


FIXTURE_METADATA = {"format": "np", "note": "written by tools/check_safetensors.py", "ünicode": "√2 ≈ 1.414"}
MIXPREC_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I32": "int32", "BOOL": "bool"}


def cmd_write(args):
    arrays = fixture_arrays()
    blob = serialize(arrays, FIXTURE_METADATA)
    with open(args.out, "wb") as f:
        f.write(blob)
    if args.expected:
        n, _, order = read_metadata(blob)
        expected = {"file_sha256": hashlib.sha256(blob).hexdigest(), "header_size": n, "metadata": FIXTURE_METADATA,
                    "order": [t[0] for t in order], "tensors": {}}
        for name, (dtype, shape, raw) in arrays.items():
            width = ITEMSIZE[dtype]
            bits = np.frombuffer(raw, dtype=BITS[width])
            values = decode(dtype, shape, raw).reshape(-1)
            expected["tensors"][name] = {
                "dtype": dtype, "mixprecDtype": MIXPREC_DTYPE[dtype], "shape": shape,
                # raw bits as unsigned integers; F64 as 16 hex digits (beyond 2^53)
                "bits": [f"{b:016x}" for b in bits] if width == 8 else [int(b) for b in bits],
                "values": [json_number(x) for x in values],
            }
        with open(args.expected, "w", encoding="utf-8") as f:
            json.dump(expected, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print(f"wrote {args.out} ({len(blob)} bytes)" + (f" and {args.expected}" if args.expected else ""))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read", help="validate a file and print its contents as JSON")
    r.add_argument("file")
    r.add_argument("--values", action="store_true", help="print the values of every tensor")
    r.add_argument("--max-values", type=int, default=64, help="print values of tensors up to this size (default 64)")
    w = sub.add_parser("write", help="write the numpy test fixture")
    w.add_argument("out")
    w.add_argument("--expected", help="also write the expected contents as JSON here")
    args = parser.parse_args()
    return cmd_read(args) if args.cmd == "read" else cmd_write(args)


if __name__ == "__main__":
    sys.exit(main())
