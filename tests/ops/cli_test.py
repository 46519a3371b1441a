"""The process as an operator meets it: --help and --version, SIGHUP, and ports above
55535 (the cluster bus's default port would pass 65535, `cluster-port` moves it).
"""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402


def free_high_port():
    """A free port above 55535, where the default bus port (port + 10000) cannot be."""
    for _ in range(500):
        port = random.randint(55536, 65535)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port above 55535")


class CliTest(opslib.OpsTest):
    def run_binary(self, *args):
        return subprocess.run([opslib.SERVER, *args], capture_output=True, text=True, timeout=30,
                              cwd=self.tmp)

    def test_help_lists_every_directive_with_its_default_and_exits_1(self):
        result = self.run_binary("--help")
        self.assertEqual(result.returncode, 1, "Disque's --help exits 1")
        text = result.stdout + result.stderr
        self.assertRegex(text, r"--port <port>\s+TCP port for clients.*\(default: 7711\)")
        self.assertRegex(text, r"--maxmemory <bytes>\s+memory limit.*\(default: 1gb\)")
        for option in ("--check-aof", "--fix", "--version", "man disque-server"):
            self.assertIn(option, text)

    def test_version(self):
        result = self.run_binary("--version")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"^Disque server v=1\.0-rc1 sha=[0-9a-f]{8}:0 malloc=libc bits=64 build=")

    def test_sighup_does_not_stop_the_server(self):
        server = self.start_server()
        client_before = opslib.redis_cli(server.port, "ADDJOB", "q", "body", "0")
        server.proc.send_signal(signal.SIGHUP)
        # The PING's round trip runs the server after the signal was delivered.
        self.assertEqual(opslib.redis_cli(server.port, "PING"), "PONG")
        self.assertIsNone(server.proc.poll())
        self.assertEqual(opslib.redis_cli(server.port, "QLEN", "q"), "1", client_before)

    def test_a_port_above_55535_needs_cluster_port(self):
        high = free_high_port()
        result = self.run_binary("--port", str(high), "--bind", "127.0.0.1")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"Port {high} is too high", result.stderr)
        # With the bus on a port of its own, the same port is fine.
        server = self.start_server("--cluster-port", str(opslib.free_port()), port=high)
        self.assertEqual(opslib.redis_cli(server.port, "PING"), "PONG")


    def info_field(self, server, section, field):
        match = re.search(rf"(?m)^{field}:(.*)$", opslib.redis_cli(server.port, "INFO", section))
        self.assertIsNotNone(match, f"no {field} in INFO {section}")
        return match.group(1).strip()

    def test_default_threads_follow_the_cpus_it_may_use(self):
        allowed = sorted(os.sched_getaffinity(0))
        one = self.start_server(cpus={allowed[0]})
        self.assertEqual(self.info_field(one, "server", "threads"), "1")
        every = self.start_server()
        # All of them, unless a cgroup CPU quota caps the count (the next test).
        self.assertIn(int(self.info_field(every, "server", "threads")), range(1, len(allowed) + 1))

    @unittest.skipUnless(os.geteuid() == 0 and os.access("/sys/fs/cgroup/cpu/cgroup.procs", os.W_OK),
                         "needs root and cgroup v1's cpu controller at /sys/fs/cgroup/cpu")
    @unittest.skipIf(len(os.sched_getaffinity(0)) < 2, "needs 2 CPUs to tell a quota from the affinity")
    def test_default_threads_follow_an_ancestor_cgroups_cpu_quota(self):
        # Half a CPU on the parent, none on the child the server runs in: one thread.
        parent = f"/sys/fs/cgroup/cpu/disque-ops-test-{os.getpid()}"
        child = os.path.join(parent, "server")
        os.makedirs(child)
        self.addCleanup(os.rmdir, parent)
        self.addCleanup(os.rmdir, child)
        with open(os.path.join(parent, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(parent, "cpu.cfs_quota_us"), "w") as f:
            f.write("50000")
        server = opslib.Server(port=opslib.free_port(), workdir=tempfile.mkdtemp(dir=self.tmp), cgroup=child)
        self.addCleanup(server.stop)  # runs before the rmdirs: a cgroup with a process stays
        self.assertEqual(self.info_field(server, "server", "threads"), "1")

    def test_config_rewrite_does_not_pin_the_default_thread_count(self):
        config = os.path.join(self.tmp, "disque.conf")
        with open(config, "w") as f:
            f.write("loglevel notice\n")
        server = self.start_server(config=config)
        self.assertEqual(opslib.redis_cli(server.port, "CONFIG", "REWRITE"), "OK")
        with open(config) as f:
            self.assertNotRegex(f.read(), r"(?m)^threads ")


if __name__ == "__main__":
    unittest.main()
