"""Support for the operations tests (tests/ops/*_test.py): where things are, free ports,
servers started as real processes and always stopped, polling with a deadline.

ctest passes DISQUE_SERVER (the binary), DISQUE_SOURCE_DIR and DISQUE_BUILD_DIR in the
environment (tests/CMakeLists.txt). Run by hand:
    DISQUE_SERVER=build/disque-server DISQUE_SOURCE_DIR=. DISQUE_BUILD_DIR=build \
        /usr/bin/python3 tests/ops/<name>_test.py
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

SERVER = os.environ.get("DISQUE_SERVER", "")
SOURCE_DIR = os.environ.get("DISQUE_SOURCE_DIR", "")
BUILD_DIR = os.environ.get("DISQUE_BUILD_DIR", "")


def source_path(*parts):
    return os.path.join(SOURCE_DIR, *parts)


def read_source(*parts):
    with open(source_path(*parts), encoding="utf-8") as f:
        return f.read()


def free_port(count=1):
    """`count` consecutive free ports whose bus ports (port + 10000) are free too, both
    below Linux's ephemeral range (32768 and up), where the kernel does not hand out
    ports to outgoing connections that could take one between this check and the bind."""
    for _ in range(500):
        base = random.randint(20000, 32767 - 10000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                for p in (port, port + 10000):
                    s = socket.socket()
                    sockets.append(s)
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


def env_for_make(**extra):
    """This environment for a nested `make`, without the jobserver of a make that may run
    ctest (its descriptors are not ours), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(extra)
    return env


def wait_for(condition, timeout=20.0, what="condition"):
    """Polls `condition` (a callable) until it returns a true value; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def redis_cli(port, *args, check=True, timeout=30):
    """Runs redis-cli against 127.0.0.1:port and returns its stdout, stripped."""
    result = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"redis-cli {' '.join(args)}: exit {result.returncode}: {result.stderr}")
    return result.stdout.strip()


def pings(port):
    try:
        return redis_cli(port, "PING", check=False, timeout=5) == "PONG"
    except subprocess.TimeoutExpired:
        return False


def _confine(cpus, cgroup):
    """In the child, before exec: its affinity mask and its cgroup."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    if cgroup is not None:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


class Server:
    """One disque-server process in a temporary directory; stop() kills it by PID."""

    def __init__(self, *args, port=None, config=None, workdir=None, env=None, wait=True, cpus=None, cgroup=None):
        """Starts the server; with `wait`, returns once it answers PING. `cpus`: the CPU
        numbers it may run on (its affinity mask); `cgroup`: a cgroup directory to run in."""
        self.port = port or free_port()
        self.dir = workdir or tempfile.mkdtemp(prefix="disque-ops-")
        self.log_path = os.path.join(self.dir, "server.log")
        argv = [SERVER] + ([config] if config else [])
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, *args]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=None if env is None else {**os.environ, **env},
                                     preexec_fn=lambda: _confine(cpus, cgroup))
        if not wait:
            return
        try:
            wait_for(lambda: self.proc.poll() is not None or pings(self.port), what=f"PONG from {self.port}")
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}: {self.log()}")
        except BaseException:
            self.stop()
            raise

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()


class OpsTest(unittest.TestCase):
    """Checks the environment, gives each test a temporary directory, and stops every
    Server a test started."""

    def setUp(self):
        for name, value in (("DISQUE_SERVER", SERVER), ("DISQUE_SOURCE_DIR", SOURCE_DIR),
                            ("DISQUE_BUILD_DIR", BUILD_DIR)):
            self.assertTrue(value, f"{name} is not set (tests/CMakeLists.txt sets it)")
        self.tmp = tempfile.mkdtemp(prefix="disque-ops-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def start_server(self, *args, **kwargs):
        kwargs.setdefault("workdir", tempfile.mkdtemp(dir=self.tmp))
        server = Server(*args, **kwargs)
        self.addCleanup(server.stop)
        return server
