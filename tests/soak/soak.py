#!/usr/bin/python3
"""Soak test (issue 8; `make soak`, not in CI): mixed load with random disconnects.

Starts disque-server on a free port in a temp dir, then for --seconds runs producers
(ADDJOB, some pipelined), consumers (GETJOB + ACKJOB or FASTACK, some NACK, some walking
away with jobs unacknowledged), and vandals (connections cut mid-request, half-sent
bulks, idle sockets, garbage). Then it drains the queues and checks:

  * every ADDJOB that was answered with an ID was delivered and acknowledged, or is
    still on the server (nothing acknowledged to a producer is lost);
  * the server is alive and answers;
  * used_memory is back within --memory-slack of what it was before the load.

Python's system interpreter with python3-redis (a Debian package; `make soak` installs
it). Exit status 0 when every check holds, 1 otherwise, 2 on a setup error.
"""
import argparse, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

# Free ports (client and bus, both below the ephemeral range): the ops tests' helper.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ops"))
from opslib import free_port  # noqa: E402

try:
    import redis
except ImportError:
    print("soak: python3-redis is not installed for", sys.executable, file=sys.stderr)
    sys.exit(2)

QUEUES = ["soak0", "soak1", "soak2", "soak3"]
RETRY = 1  # seconds: jobs a consumer walked away with come back quickly


class Ledger:
    """What the clients saw: IDs the server gave out, and IDs acknowledged by consumers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.produced = set()
        self.acked = set()
        # Acknowledged by a command whose reply was lost (connection error): the server
        # may have taken the ACK, so these cannot be called lost if they are gone.
        self.uncertain = set()
        self.counts = {"addjob": 0, "ack": 0, "nack": 0, "abandoned": 0, "cut": 0, "errors": 0}

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] += n


def connect(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, decode_responses=True)


def producer(port, ledger, stop, rng):
    conn = connect(port)
    body = "x" * rng.choice([10, 100, 1000])
    while not stop.is_set():
        try:
            if rng.random() < 0.02:  # hang up and come back
                conn.close()
                conn = connect(port)
            q = rng.choice(QUEUES)
            if rng.random() < 0.3:
                pipe = conn.pipeline(transaction=False)
                for _ in range(rng.randint(2, 20)):
                    pipe.execute_command("ADDJOB", q, body, 0, "RETRY", RETRY)
                ids = pipe.execute()
            else:
                ids = [conn.execute_command("ADDJOB", q, body, 0, "RETRY", RETRY)]
            with ledger.lock:
                ledger.produced.update(ids)
                ledger.counts["addjob"] += len(ids)
        except redis.RedisError:
            ledger.add("errors")
            conn = connect(port)


def consumer(port, ledger, stop, rng):
    conn = connect(port)
    while not stop.is_set():
        ids = []
        try:
            got = conn.execute_command("GETJOB", "TIMEOUT", 100, "COUNT", rng.randint(1, 16), "FROM", *QUEUES)
            if not got:
                continue
            ids = [job[1] for job in got]
            r = rng.random()
            if r < 0.05:  # walk away: the jobs come back after RETRY
                ledger.add("abandoned", len(ids))
                conn.close()
                conn = connect(port)
            elif r < 0.10:
                conn.execute_command("NACK", *ids)
                ledger.add("nack", len(ids))
            else:
                try:
                    conn.execute_command("FASTACK" if r < 0.5 else "ACKJOB", *ids)
                except redis.RedisError:
                    with ledger.lock:
                        ledger.uncertain.update(ids)
                    raise
                with ledger.lock:
                    ledger.acked.update(ids)
                    ledger.counts["ack"] += len(ids)
        except redis.RedisError:
            ledger.add("errors")
            conn = connect(port)


def vandal(port, ledger, stop, rng):
    """Raw sockets doing what well-behaved clients do not."""
    held = []
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            kind = rng.random()
            if kind < 0.3:  # a request cut in the middle of its body
                s.sendall(b"*4\r\n$6\r\nADDJOB\r\n$5\r\nsoak0\r\n$100\r\nabc")
            elif kind < 0.5:  # pipelined commands, replies never read
                s.sendall(b"PING\r\n" * rng.randint(1, 5000))
            elif kind < 0.6:  # protocol garbage
                s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))))
            elif kind < 0.7:  # an idle socket kept for a while
                held.append(s)
                if len(held) > 50:
                    held.pop(0).close()
                ledger.add("cut")
                continue
            else:  # an RST instead of a FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.sendall(b"GETJOB TIMEOUT 1000 FROM soak1\r\n")
            s.close()
            ledger.add("cut")
        except OSError:
            ledger.add("errors")
        time.sleep(rng.random() * 0.01)
    for s in held:
        s.close()


def info(conn, field):
    return int(conn.info().get(field, -1))  # redis-py parses INFO into a dict


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=os.path.join(repo, "build", "disque-server"))
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--threads", type=int, default=2, help="server shard threads")
    p.add_argument("--producers", type=int, default=4)
    p.add_argument("--consumers", type=int, default=4)
    p.add_argument("--vandals", type=int, default=2)
    p.add_argument("--memory-slack", type=int, default=8 << 20, help="bytes of used_memory allowed above the start")
    p.add_argument("--seed", type=int, default=int(time.time()))
    args = p.parse_args()
    if not os.access(args.server, os.X_OK):
        print("soak: no server binary at", args.server, file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="disque-soak-")
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "w")
    server = subprocess.Popen([args.server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                               "--threads", str(args.threads)], stdout=log, stderr=subprocess.STDOUT)
    failures = []
    try:
        admin = connect(port)
        deadline = time.time() + 10
        while True:
            try:
                admin.ping()
                break
            except redis.RedisError:
                if time.time() > deadline or server.poll() is not None:
                    print("soak: the server did not start; log in", tmp, file=sys.stderr)
                    return 2
                time.sleep(0.05)
        used_before = info(admin, "used_memory")
        print(f"soak: seed {args.seed}, port {port}, {args.seconds:.0f} s, dir {tmp}", flush=True)

        ledger, stop = Ledger(), threading.Event()
        rng = random.Random(args.seed)
        roles = ([producer] * args.producers + [consumer] * args.consumers + [vandal] * args.vandals)
        threads = [threading.Thread(target=role, args=(port, ledger, stop, random.Random(rng.random())), daemon=True)
                   for role in roles]
        for t in threads:
            t.start()
        end = time.time() + args.seconds
        while time.time() < end:
            time.sleep(min(5, max(0, end - time.time())))
            with ledger.lock:
                print(f"soak: {time.strftime('%H:%M:%S')} {ledger.counts}, jobs on server "
                      f"{info(admin, 'registered_jobs')}", flush=True)
            if server.poll() is not None:
                failures.append(f"the server exited with status {server.returncode}")
                break
        stop.set()
        for t in threads:
            t.join(30)

        if not failures:
            # Drain: consume until every produced job is acked (abandoned and NACKed ones
            # come back after RETRY) or nothing moves for a while.
            missing = ledger.produced - ledger.acked
            idle_since = time.time()
            while missing and time.time() - idle_since < 10 * RETRY + 5:
                got = admin.execute_command("GETJOB", "TIMEOUT", 500, "COUNT", 1000, "FROM", *QUEUES)
                if got:
                    ids = [job[1] for job in got]
                    admin.execute_command("ACKJOB", *ids)
                    ledger.acked.update(ids)
                    missing -= set(ids)
                    idle_since = time.time()
            lost = [i for i in missing - ledger.uncertain if admin.execute_command("SHOW", i) is None]
            if lost:
                failures.append(f"{len(lost)} acknowledged ADDJOBs were neither delivered nor queued, e.g. {lost[:3]}")
            still = len(missing) - len(lost)
            print(f"soak: {len(ledger.produced)} jobs produced, {len(ledger.acked & ledger.produced)} acked, "
                  f"{still} still on the server, {len(lost)} lost", flush=True)
            if admin.ping() is not True:
                failures.append("the server does not answer PING")
            # Memory: what is left is the jobs still held (acked ones are collected).
            ok = False
            deadline = time.time() + 30
            while time.time() < deadline:
                used = info(admin, "used_memory")
                if used <= used_before + args.memory_slack:
                    ok = True
                    break
                time.sleep(0.5)
            print(f"soak: used_memory {used_before} before, {used} after", flush=True)
            if not ok:
                failures.append(f"used_memory {used} is more than {args.memory_slack} above {used_before}")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
                failures.append("the server did not stop within 30 s of SIGTERM")
        log.close()

    if failures:
        print("soak: FAILED (seed", args.seed, "; log kept in", tmp + ")")
        for f in failures:
            print("  -", f)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
