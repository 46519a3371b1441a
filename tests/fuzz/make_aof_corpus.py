#!/usr/bin/env python3
"""Writes the seed corpus of aof_fuzz (tests/fuzz/corpus/aof/).

Each seed is 2 control bytes (stretch, cut: see aof_fuzz.cpp) followed by an AOF file.
An encoder of its own, written from docs/persistence.md (our format) and PROTOCOL.md 8.1
and 8.5 (Disque's RESP files, the job serialization) rather than from the C++ code, so
the seeds also check that the two agree. Run it from anywhere; it rewrites the
directory. Clean files have plain names, "torn_" files end in a cut write, "bad_" files
are damaged; "legacy_" files are Disque's format, "stretched_" seeds read across the
reader's 1 MB buffer refill.
"""

import struct

from corpus_writer import write_corpus

ID = b"D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1"
ID2 = b"D-dcb833cf-AAAAAAAAAAAAAAAAAAAAAAAA-0000"
NODE = b"0123456789abcdef0123456789abcdef01234567"
LOADJOB, DELJOB = 1, 2


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def header(version=1, magic=b"DQAOF\r\n\x1a"):
    head = magic + struct.pack("<I", version)
    return head + struct.pack("<I", crc32c(head))


def record(type_, payload, payload_crc=None, reserved=b"\0\0\0"):
    head = struct.pack("<IB", len(payload), type_) + reserved
    if payload_crc is None:
        payload_crc = crc32c(payload)
    return head + struct.pack("<II", crc32c(head), payload_crc) + payload


def job(job_id=ID, state=2, gc_retry=0, flags=0, queue=b"myqueue", body=b"a job body",
        nodes=(NODE,), etime=1900000000):
    """PROTOCOL.md 8.5: uint32 L, the 68-byte fixed block, queue, body, nodes."""
    fixed = job_id + struct.pack("<BBHIQIIHH", state | gc_retry << 4, flags, 3, etime,
                                 1700000000123456, 0, 300, 1, 2)
    rest = (fixed + struct.pack("<I", len(queue)) + queue + struct.pack("<I", len(body)) + body
            + struct.pack("<I", len(nodes)) + b"".join(nodes))
    return struct.pack("<I", len(rest)) + rest


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


def seed(file, stretch=0, cut=0):
    return bytes([stretch, cut]) + file


def seeds():
    one = record(LOADJOB, job())
    two = record(LOADJOB, job(ID2, state=1, gc_retry=15, flags=0xFF, queue=b"", body=b"\0\r\n",
                              nodes=()))
    dele = record(DELJOB, ID)
    clean = header() + one + two + dele
    yield "empty", seed(b"")
    yield "header_only", seed(header())
    yield "one_loadjob", seed(header() + one)
    yield "one_deljob", seed(header() + dele, cut=20)
    yield "three_records", seed(clean, cut=3)
    yield "empty_body_and_queue", seed(header() + record(LOADJOB, job(queue=b"", body=b"",
                                                                      nodes=())))
    yield "big_body", seed(header() + record(LOADJOB, job(body=bytes(range(256)) * 8)), cut=200)
    yield "torn_in_file_header", seed(header()[:9])
    yield "torn_in_record_header", seed(clean[:len(clean) - len(dele) + 7])
    yield "torn_in_payload", seed(header() + one + two[:-4])
    yield "torn_zero_tail", seed(header() + one + b"\0" * 40)
    yield "torn_zero_file", seed(b"\0" * 10)
    yield "torn_unwritten_payload", seed(header() + one + record(DELJOB, b"\0" * 40, crc32c(ID)))
    yield "bad_magic", seed(b"DQAOF\r\n\x00" + header()[8:] + one)
    yield "bad_version", seed(header(version=2) + one)
    yield "bad_header_crc", seed(header()[:12] + b"\0\0\0\0" + one)
    yield "bad_short_file", seed(b"hello")
    yield "bad_record_header_crc", seed(header() + one[:8] + b"XXXX" + one[12:] + dele)
    yield "bad_unknown_type", seed(header() + record(3, ID) + dele)
    yield "bad_reserved_bytes", seed(header() + record(DELJOB, ID, reserved=b"\1\0\0") + dele)
    huge = struct.pack("<IB3x", 0x7FFFFFFF, LOADJOB)  # a verified header, length 2 GB
    yield "bad_length", seed(header() + huge + struct.pack("<II", crc32c(huge), 0) + dele)
    yield "bad_payload_crc", seed(header() + record(DELJOB, ID, payload_crc=1) + one)
    yield "bad_deljob_id", seed(header() + record(DELJOB, ID[:-1]) + one)
    yield "bad_loadjob_state", seed(header() + record(LOADJOB, job(state=4)))
    # Accepted: the job's own length ends it, and the loader ignores what follows.
    yield "loadjob_trailing_bytes", seed(header() + record(LOADJOB, job() + b"x"))
    yield "bad_loadjob_node", seed(header() + record(LOADJOB, job(nodes=(NODE.upper(),))))
    legacy = resp(b"LOADJOB", job()) + resp(b"loadjob", job(ID2, nodes=())) + resp(b"DELJOB", ID)
    yield "legacy", seed(legacy, cut=5)
    yield "legacy_mixed_case", seed(resp(b"LoadJob", job()) + resp(b"deljob", ID))
    yield "torn_legacy_in_count", seed(legacy + b"*2\r")
    yield "torn_legacy_in_bulk", seed(legacy[:-10])
    yield "torn_legacy_short", seed(legacy[:12])
    yield "bad_legacy_command", seed(resp(b"ADDJOB", b"q") + legacy)
    yield "bad_legacy_three_args", seed(resp(b"DELJOB", ID, ID) + legacy)
    yield "bad_legacy_bulk_end", seed(legacy[:30] + b"XX" + legacy[32:])
    yield "bad_legacy_header", seed(b"*2\r\n$abc\r\n" + legacy)
    yield "bad_legacy_long_number", seed(b"*2\r\n$" + b"9" * 30 + b"\r\n" + legacy)
    # Read across the 1 MB refill: the file's records start `cut` bytes before it. The
    # two legacy seeds that end in a record spanning the refill are the regression inputs
    # of the use-after-free fixed in AofReader::NextLegacy (the command name was a view
    # into the buffer that the Fill() for the argument reallocated).
    yield "stretched", seed(clean, stretch=0xFF, cut=10)
    yield "stretched_in_record_header", seed(clean, stretch=0xFF, cut=0)
    yield "stretched_torn", seed(clean[:-3], stretch=0xFF, cut=70)
    yield "stretched_legacy", seed(legacy, stretch=0xFF, cut=10)
    yield "stretched_legacy_in_bulk", seed(legacy, stretch=0xFF, cut=100)
    yield "stretched_legacy_torn", seed(legacy[:-2], stretch=0xFF, cut=40)


if __name__ == "__main__":
    write_corpus("aof", seeds())
