#!/usr/bin/env python3
"""Reads TensorBoard event files and prints their events as JSON, to check what the Java writer wrote.

It shares nothing with the writer: written from the public TFRecord format and the protobuf wire
format, with only Python's standard library (no TensorFlow, TensorBoard or generated protobuf code).
Every record's two masked CRC32Cs are checked; on a mismatch, a truncated record or a malformed
message it prints what and where to stderr and exits 1, printing nothing to stdout.

    read_tfevents.py PATH...   (files, or directories whose files with "tfevents" in their names are read in name order)

Output: {"events": [{"file", "record", "offset", "wall_time", "step", "file_version"?, "values": [...]}]},
each value {"tag", "simple_value"} or {"tag", "histo": {"min", "max", "num", "sum", "sum_squares",
"bucket_limit", "bucket"}}. Floats print as Python's repr, which a double parser reads back exactly
(NaN and infinities as NaN, Infinity, -Infinity).
"""
import json
import os
import struct
import sys


class Unreadable(Exception):
    pass


def _crc32c_table():
    # CRC-32C (Castagnoli), reflected polynomial 0x82F63B78
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


if crc32c(b"123456789") != 0xE3069283:  # CRC-32C's published check value
    raise SystemExit("read_tfevents.py: its own CRC32C is wrong")


def records(path):
    """(index, offset, data) of each TFRecord in the file, both CRCs checked."""
    with open(path, "rb") as f:
        data = f.read()
    pos, index = 0, 0
    while pos < len(data):
        where = "%s: record %d at byte %d" % (path, index, pos)
        if len(data) - pos < 12:
            raise Unreadable("%s: truncated: %d of the 12 header bytes" % (where, len(data) - pos))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked_crc32c(header) != length_crc:
            raise Unreadable("%s: length CRC mismatch: stored 0x%08x, computed 0x%08x"
                             % (where, length_crc, masked_crc32c(header)))
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            raise Unreadable("%s: truncated: %d data and CRC bytes of %d" % (where, len(data) - start, length + 4))
        body = data[start:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if masked_crc32c(body) != data_crc:
            raise Unreadable("%s: data CRC mismatch: stored 0x%08x, computed 0x%08x"
                             % (where, data_crc, masked_crc32c(body)))
        yield index, pos, body
        pos, index = end + 4, index + 1


# Protobuf wire format: each field is a varint key (number << 3 | wire type) and a value:
# 0 varint, 1 fixed 8 bytes, 2 varint length + bytes, 5 fixed 4 bytes (3 and 4, groups, are not used here).
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


def varint(buf, pos, where):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise Unreadable("%s: varint runs past the end" % where)
        if shift >= 70:
            raise Unreadable("%s: varint longer than 10 bytes" % where)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def fields(buf, where):
    """(number, wire type, value) of each field: an int for varints, bytes for the others."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Unreadable("%s: field number 0" % where)
        if wire == VARINT:
            value, pos = varint(buf, pos, where)
        elif wire in (FIXED64, FIXED32, LENGTH_DELIMITED):
            if wire == LENGTH_DELIMITED:
                size, pos = varint(buf, pos, where)
            else:
                size = 8 if wire == FIXED64 else 4
            if pos + size > len(buf):
                raise Unreadable("%s: field %d runs past the end" % (where, number))
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise Unreadable("%s: field %d has wire type %d" % (where, number, wire))
        yield number, wire, value


def expect(where, number, wire, wanted):
    if wire != wanted:
        raise Unreadable("%s: field %d has wire type %d, the schema says %d" % (where, number, wire, wanted))


def text(b, where):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Unreadable("%s: a string that is not UTF-8 (%s)" % (where, e))


def double(b):
    return struct.unpack("<d", b)[0]


def doubles(where, number, wire, value):
    """A repeated double: packed (one length-delimited run of 8-byte values) or one value per field."""
    if wire == FIXED64:
        return [double(value)]
    expect(where, number, wire, LENGTH_DELIMITED)
    if len(value) % 8:
        raise Unreadable("%s: packed doubles of field %d are %d bytes" % (where, number, len(value)))
    return [double(value[i:i + 8]) for i in range(0, len(value), 8)]


def histogram(buf, where):
    # HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5 (doubles), bucket_limit 6, bucket 7
    names = {1: "min", 2: "max", 3: "num", 4: "sum", 5: "sum_squares"}
    h = {"min": 0.0, "max": 0.0, "num": 0.0, "sum": 0.0, "sum_squares": 0.0, "bucket_limit": [], "bucket": []}
    for number, wire, value in fields(buf, where):
        if number in names:
            expect(where, number, wire, FIXED64)
            h[names[number]] = double(value)
        elif number == 6:
            h["bucket_limit"] += doubles(where, number, wire, value)
        elif number == 7:
            h["bucket"] += doubles(where, number, wire, value)
    if len(h["bucket_limit"]) != len(h["bucket"]):
        raise Unreadable("%s: %d bucket limits for %d buckets" % (where, len(h["bucket_limit"]), len(h["bucket"])))
    return h


def summary_value(buf, where):
    # Summary.Value: tag 1 (string), simple_value 2 (float), histo 5 (HistogramProto)
    v = {}
    for number, wire, value in fields(buf, where):
        if number == 1:
            expect(where, number, wire, LENGTH_DELIMITED)
            v["tag"] = text(value, where)
        elif number == 2:
            expect(where, number, wire, FIXED32)
            v["simple_value"] = struct.unpack("<f", value)[0]
        elif number == 5:
            expect(where, number, wire, LENGTH_DELIMITED)
            v["histo"] = histogram(value, where + " histo")
    if "tag" not in v:
        raise Unreadable("%s: a summary value without a tag" % where)
    return v


def event(buf, where):
    # Event: wall_time 1 (double), step 2 (int64), file_version 3 (string), summary 5 (Summary: value 1, repeated),
    # session_log 7 (SessionLog)
    e = {"wall_time": 0.0, "step": 0, "values": []}
    for number, wire, value in fields(buf, where):
        if number == 1:
            expect(where, number, wire, FIXED64)
            e["wall_time"] = double(value)
        elif number == 2:
            expect(where, number, wire, VARINT)
            e["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3:
            expect(where, number, wire, LENGTH_DELIMITED)
            e["file_version"] = text(value, where)
        elif number == 5:
            expect(where, number, wire, LENGTH_DELIMITED)
            for n, w, v in fields(value, where + " summary"):
                if n == 1:
                    expect(where + " summary", n, w, LENGTH_DELIMITED)
                    e["values"].append(summary_value(v, "%s value %d" % (where, len(e["values"]))))
        elif number == 7:
            # SessionLog: status 1 (enum: 1 START, 2 STOP, 3 CHECKPOINT), checkpoint_path 2, msg 3
            expect(where, number, wire, LENGTH_DELIMITED)
            log = {"status": 0}
            for n, w, v in fields(value, where + " session_log"):
                if n == 1:
                    expect(where + " session_log", n, w, VARINT)
                    log["status"] = v
                elif n == 3:
                    expect(where + " session_log", n, w, LENGTH_DELIMITED)
                    log["msg"] = text(v, where)
            e["session_log"] = log
    return e


def event_files(paths):
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if "tfevents" in name:
                    yield os.path.join(path, name)
        else:
            yield path


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    events = []
    try:
        for path in event_files(argv[1:]):
            for index, offset, body in records(path):
                e = event(body, "%s: record %d at byte %d" % (path, index, offset))
                events.append(dict(file=os.path.basename(path), record=index, offset=offset, **e))
    except (Unreadable, OSError) as problem:
        print("read_tfevents.py: %s" % problem, file=sys.stderr)
        return 1
    json.dump({"events": events}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
