#!/usr/bin/env python3
"""Writes the seed corpus of bus_message_fuzz (tests/fuzz/corpus/bus_message/).

An encoder of its own, written from docs/cluster-bus.md rather than from the C++ code,
so the seeds also check that the two agree. Run it from anywhere; it rewrites the
directory. Valid frames are named after their type, invalid ones start with "bad_".
"""

import struct

from corpus_writer import write_corpus

SENDER = b"0123456789abcdef0123456789abcdef01234567"
OTHER = b"fedcba9876543210fedcba9876543210fedcba98"
JOB_ID = b"D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1"
PING, PONG, MEET, FAIL = 1, 2, 3, 4
REPLJOB, GOTJOB, ENQUEUE, WILLQUEUE, QUEUED, WORKING = 5, 6, 7, 8, 9, 10
SETACK, GOTACK, DELJOB, NEEDJOBS, YOURJOBS, PAUSE = 11, 12, 13, 14, 15, 16
NOREPLY, INCR_NACKS, INCR_DELIV = 1 << 0, 1 << 1, 1 << 2
LEAVING, PFAIL, FAILED = 1 << 6, 1 << 1, 1 << 2


def frame(type_, body=b"", ip=b"127.0.0.1", flags=0, sender=SENDER, node_flags=0,
          version=1, magic=b"DQBS", length=None):
    rest = sender + struct.pack(">HHHB", 7711, 17711, node_flags, len(ip)) + ip + body
    if length is None:
        length = 12 + len(rest)
    return magic + struct.pack(">HBBI", version, type_, flags, length) + rest


def entry(node_id, ip, port=7712, flags=0, ping=0, pong=0):
    return (node_id + struct.pack(">B", len(ip)) + ip +
            struct.pack(">HHHQQ", port, port + 10000, flags, ping, pong))


def gossip(*entries):
    return struct.pack(">H", len(entries)) + b"".join(entries)


def job(job_id=JOB_ID, aux=0):
    """GOTJOB to DELJOB (types 6 to 13)."""
    return job_id + struct.pack(">I", aux)


def queue(name, aux=0):
    """NEEDJOBS and PAUSE."""
    return struct.pack(">II", aux, len(name)) + name


def jobs(*blobs):
    """REPLJOB and YOURJOBS: the blobs are opaque to the codec."""
    return struct.pack(">I", len(blobs)) + b"".join(struct.pack(">I", len(b)) + b for b in blobs)


def seeds():
    ping = frame(PING, gossip(entry(OTHER, b"10.0.0.2", ping=1700000000000, pong=1700000000100)))
    yield "ping_empty", frame(PING, gossip())
    yield "ping_one", ping
    yield "ping_three", frame(PING, gossip(entry(OTHER, b"10.0.0.2"), entry(b"a" * 40, b""),
                                           entry(b"b" * 40, b"fe80::1", flags=PFAIL)))
    yield "pong_ipv6", frame(PONG, gossip(entry(OTHER, b"::1", flags=FAILED)), ip=b"2001:db8::7")
    yield "meet_no_ip", frame(MEET, gossip(), ip=b"", node_flags=LEAVING)
    yield "fail", frame(FAIL, OTHER, flags=1)
    yield "repljob", frame(REPLJOB, jobs(b"a serialized job\x00\xff"), flags=NOREPLY)
    yield "gotjob", frame(GOTJOB, job())
    yield "enqueue", frame(ENQUEUE, job(aux=5))
    yield "willqueue", frame(WILLQUEUE, job())
    yield "queued", frame(QUEUED, job(), flags=INCR_NACKS | INCR_DELIV)
    yield "working", frame(WORKING, job())
    yield "setack", frame(SETACK, job(aux=3))
    yield "gotack", frame(GOTACK, job(aux=1))
    yield "deljob", frame(DELJOB, job(b"D-00000000-\x00\xff" + b"x" * 22 + b"-0000"))
    yield "needjobs", frame(NEEDJOBS, queue(b"myqueue", aux=10))
    yield "yourjobs", frame(YOURJOBS, jobs(b"job one", b"", b"job \x00 three"))
    yield "yourjobs_empty", frame(YOURJOBS, jobs())
    yield "pause", frame(PAUSE, queue(b"q\x00\xff\r\n", aux=3))
    yield "pause_empty_queue", frame(PAUSE, queue(b""))
    yield "unknown_type", frame(200, b"\x00\x05anything")
    yield "two_frames", ping + frame(FAIL, OTHER)
    yield "frame_and_a_half", ping + ping[:30]
    yield "bad_magic", b"GET / HTTP/1.1\r\n\r\n"
    yield "bad_version", frame(PING, gossip(), version=2)
    yield "bad_length", frame(PING, gossip(), length=58)
    yield "bad_sender_id", frame(FAIL, OTHER, sender=SENDER.upper())
    yield "bad_ip", frame(PING, gossip(entry(OTHER, b"host.example")))
    yield "bad_count", frame(PING, struct.pack(">H", 3) + entry(OTHER, b""))
    yield "bad_trailing", frame(FAIL, OTHER + b"x")
    yield "bad_truncated", ping[:-1]
    yield "bad_job_id", frame(GOTJOB, job(b"d" + JOB_ID[1:]))
    yield "bad_job_truncated", frame(SETACK, job()[:-1])
    yield "bad_job_trailing", frame(DELJOB, job() + b"x")
    yield "bad_queue_length", frame(NEEDJOBS, struct.pack(">II", 1, 8) + b"short")
    yield "bad_job_count", frame(YOURJOBS, struct.pack(">I", 3) + jobs(b"x")[4:])
    yield "bad_job_length", frame(REPLJOB, struct.pack(">II", 1, 100) + b"short")


if __name__ == "__main__":
    write_corpus("bus_message", seeds())
