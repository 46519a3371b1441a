#!/usr/bin/env python3
"""Writes the seed corpus of job_id_fuzz (tests/fuzz/corpus/job_id/).

Each seed is job ID text as a client or a peer sends it (PROTOCOL.md 2.2 and the layout
in include/disque/engine/job_id.h): canonical IDs, IDs that pass Disque's format check
but are not canonical, and text that fails it. Inputs of 27 bytes or more also drive the
generator (key, slot, TTL, guarantee, node ID: see job_id_fuzz.cpp). Run it from
anywhere; it rewrites the directory. Text that does not parse starts with "bad_".
"""

import struct

from corpus_writer import write_corpus

ID = b"D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1"


def with_char(text, at, char):
    return text[:at] + char + text[at + 1:]


def seeds():
    yield "canonical", ID
    yield "slot_zero_ttl_zero", b"D-00000000-AAAAAAAAAAAAAAAAAAAAAAAA-0000"
    yield "slot_max_ttl_max", b"D-ffffffff-////////////////////////-ffff"
    yield "at_most_once", b"D-0123abcd-z+9Ab/01z+9Ab/01z+9Ab/01-0e10"
    yield "bad_uppercase_node", b"D-DCB833CF-8YL1NT17e9+wsA/09NqxscQI-05a1"
    yield "bad_uppercase_ttl", b"D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05A1"
    yield "bad_not_base64", with_char(ID, 21, b"*")
    yield "bad_not_base64_slot", with_char(ID, 11, b"-")
    yield "bad_not_hex_ttl", with_char(ID, 39, b"g")
    yield "bad_high_bytes", with_char(with_char(ID, 12, b"\xff"), 3, b"\x80")
    yield "bad_short", ID[:-1]
    yield "bad_long", ID + b"0"
    yield "bad_no_prefix", b"X" + ID[1:]
    yield "bad_dash_moved", with_char(with_char(ID, 10, b"c"), 9, b"-")
    yield "bad_empty", b""
    yield "bad_prefix_only", b"D-"
    yield "bad_lowercase_d", b"d" + ID[1:]
    # Generator inputs: key, slot 4095 + high bits, TTL, at-least-once, node ID.
    key = bytes(range(16))
    yield "generator_slot_high_bits", (key + struct.pack("<Hqb", 0xffff, 3600, 1) +
                                       b"0123456789abcdef" * 3)
    yield "generator_negative_ttl", key + struct.pack("<Hqb", 7, -60, 0) + b"fedcba98"
    yield "generator_huge_ttl", key + struct.pack("<Hqb", 4096, 2**63 - 1, 1) + b"ABCDEF01"
    yield "generator_short_node", key + struct.pack("<Hqb", 1, 60, 0) + b"abc"
    yield "generator_no_node", key + struct.pack("<Hqb", 2, 120, 1)


if __name__ == "__main__":
    write_corpus("job_id", seeds())
