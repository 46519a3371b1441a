#!/usr/bin/env python3
"""Writes the seed corpus of resp_request_fuzz (tests/fuzz/corpus/resp_request/).

Each seed is 3 control bytes (the split point and the stretch: see resp_request_fuzz.cpp)
followed by what a client sends, written from PROTOCOL.md 1.1.
Run it from anywhere; it rewrites the directory. Seeds that end in a protocol error
start with "bad_"; "long_" seeds stretch a line to around the 64 KB limits.
"""

import struct

from corpus_writer import write_corpus


def seed(stream, split=None, stretch=None):
    """`split`: where the two-piece run cuts (default: the middle; below 4096). `stretch`:
    None, or k in 0..15 to insert 64 KB - 8 + k more copies of the byte at the split point
    there (which makes that byte 65529 + k bytes long)."""
    if split is None:
        split = len(stream) // 2
    assert split < 4096
    if stretch is None:
        return struct.pack("<HB", split, 0) + stream
    return struct.pack("<HB", split | stretch << 12, 0xD7) + stream


def multibulk(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


ADDJOB = multibulk(b"ADDJOB", b"myqueue", b"a job body", b"0", b"RETRY", b"10")
GETJOB = multibulk(b"GETJOB", b"TIMEOUT", b"100", b"FROM", b"myqueue")
ACKJOB = multibulk(b"ACKJOB", b"D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1")


def seeds():
    yield "ping", seed(multibulk(b"PING"))
    yield "addjob", seed(ADDJOB, split=ADDJOB.index(b"job body"))
    yield "addjob_cut_in_header", seed(ADDJOB, split=ADDJOB.index(b"$7") + 1)
    yield "addjob_cut_at_crlf", seed(ADDJOB, split=ADDJOB.index(b"\r\n") + 1)
    yield "pipeline", seed(ADDJOB + GETJOB + ACKJOB, split=len(ADDJOB) + 3)
    yield "pipeline_incomplete", seed(ADDJOB + GETJOB[:-5])
    yield "binary_bulk", seed(multibulk(b"ADDJOB", b"q", b"\x00\r\n*1\r\n$\xff", b"0"))
    yield "empty_bulk", seed(multibulk(b"ECHO", b""))
    yield "zero_and_negative_count", seed(b"*0\r\n*-1\r\n*-5\r\n" + multibulk(b"PING"), split=5)
    yield "count_line_waiting", seed(b"*3\r")
    yield "bulk_waiting", seed(b"*1\r\n$536870912\r\nabc")
    yield "crlf_not_checked", seed(b"*1\r\n$4\r\nPINGxy*1\r\n$4\r\nQUIT\r\n")
    yield "inline_ping", seed(b"PING\r\n")
    yield "inline_lf_only", seed(b"PING\nINFO server\n")
    yield "inline_quotes", seed(b'ADDJOB q "a b\\x41\\n\\t\\"c" 0 \'lit\\\'eral\'\r\n', split=9)
    yield "inline_empty_args", seed(b"ADDJOB \"\" q '' 0\r\n")
    yield "inline_blank_lines", seed(b"\r\n\n   \r\n\t\n")
    yield "inline_then_multibulk", seed(b"QUIT now\r\n" + GETJOB + b"ping\n", split=11)
    yield "inline_waiting", seed(b"ADDJOB q body")
    yield "bad_count", seed(b"*abc\r\n")
    yield "bad_count_leading_zero", seed(b"*01\r\n$1\r\na\r\n")
    yield "bad_count_plus", seed(b"*+1\r\n$1\r\na\r\n")
    yield "bad_count_too_big", seed(b"*1048577\r\n")
    yield "count_max", seed(b"*1048576\r\n$4\r\nPING\r\n")
    yield "bad_count_overflow", seed(b"*9223372036854775808\r\n")
    yield "bad_expected_dollar", seed(b"*2\r\n$4\r\nECHO\r\n:12\r\n")
    yield "bad_bulk_negative", seed(b"*1\r\n$-1\r\n")
    yield "bad_bulk_too_big", seed(b"*1\r\n$536870913\r\n")
    yield "bad_bulk_not_number", seed(b"*1\r\n$4x\r\nPING\r\n")
    yield "bad_unbalanced_quotes", seed(b'PING\r\nECHO "abc\r\n')
    yield "bad_quote_then_char", seed(b"ECHO 'a'b\r\n")
    yield "bad_after_requests", seed(ADDJOB + b"*1\r\n%4\r\nPING\r\n", split=len(ADDJOB) + 2)
    # Inline lines of 64 KB and around ("ECHO " + 65529 + k times "x" + CR): accepted
    # when the newline is in the buffer; refused by a connection that receives more than
    # 64 KB (65536 bytes) of the line before its newline.
    yield "long_inline_under_limit", seed(b"ECHO x\r\n", split=5, stretch=0)
    yield "long_inline_at_limit", seed(b"ECHO x\r\n", split=5, stretch=1)
    yield "long_inline_over_limit", seed(b"ECHO x\r\n", split=5, stretch=2)
    yield "long_inline_no_newline", seed(b"ECHO x", split=5, stretch=15)
    yield "long_count_line", seed(b"*1\r\n$4\r\nPING\r\n", split=1, stretch=8)
    yield "long_bulk_count_line", seed(b"*1\r\n$4\r\nPING\r\n", split=5, stretch=8)
    yield "long_bulk", seed(b"*1\r\n$65544\r\nx\r\n", split=12, stretch=15)
    yield "long_pipeline_of_spaces", seed(b"PING\n \nPING\n", split=5, stretch=15)

if __name__ == "__main__":
    write_corpus("resp_request", seeds())
