"""`make install`: the files it lays out, where, and the systemd unit they make up.

`make install` is `cmake --install $(INSTALL_FROM) --prefix $(PREFIX)` with DESTDIR passed
through (Makefile); these tests run it, and that cmake command, on the build tree under
test (it only copies files).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402


class InstallTest(opslib.OpsTest):
    def install(self, prefix, destdir=None):
        env = dict(os.environ)
        if destdir is None:
            env.pop("DESTDIR", None)
        else:
            env["DESTDIR"] = destdir
        result = subprocess.run(["cmake", "--install", opslib.BUILD_DIR, "--prefix", prefix], env=env,
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def read(self, path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    def test_usr_prefix_with_destdir_lays_out_the_expected_files(self):
        stage = os.path.join(self.tmp, "stage")
        self.install("/usr", destdir=stage)
        files = sorted(os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs)
        self.assertEqual(files, ["etc/disque/disque.conf",
                                 "usr/bin/disque-server",
                                 "usr/lib/systemd/system/disque-server.service",
                                 "usr/share/man/man1/disque-server.1"])
        binary = os.path.join(stage, "usr/bin/disque-server")
        self.assertTrue(os.access(binary, os.X_OK))
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(version.returncode, 0)
        self.assertRegex(version.stdout, r"^Disque server v=1\.0-rc1 ")
        self.assertEqual(self.read(os.path.join(stage, "etc/disque/disque.conf")),
                         opslib.read_source("docker", "disque.conf"))
        self.assertEqual(self.read(os.path.join(stage, "usr/share/man/man1/disque-server.1")),
                         opslib.read_source("docs", "disque-server.1"))
        unit = self.read(os.path.join(stage, "usr/lib/systemd/system/disque-server.service"))
        # The unit names the installed paths (not the staging directory).
        self.assertIn("\nExecStart=/usr/bin/disque-server /etc/disque/disque.conf --daemonize no\n", unit)
        self.assertIn("\nType=notify\n", unit)
        self.assertNotIn("@", unit.replace("@system-service", ""), "a placeholder was left unfilled")

    def test_other_prefixes_keep_the_config_under_the_prefix(self):
        stage = os.path.join(self.tmp, "stage")
        self.install("/usr/local", destdir=stage)
        self.assertTrue(os.path.isfile(os.path.join(stage, "usr/local/etc/disque/disque.conf")))
        unit = self.read(os.path.join(stage, "usr/local/lib/systemd/system/disque-server.service"))
        self.assertIn("\nExecStart=/usr/local/bin/disque-server /usr/local/etc/disque/disque.conf --daemonize no\n",
                      unit)

    def test_reinstalling_keeps_an_edited_config(self):
        stage = os.path.join(self.tmp, "stage")
        self.install("/usr", destdir=stage)
        config = os.path.join(stage, "etc/disque/disque.conf")
        with open(config, "a") as f:
            f.write("\nport 7799\n")
        edited = self.read(config)
        output = self.install("/usr", destdir=stage)
        self.assertIn("Kept:", output)
        self.assertEqual(self.read(config), edited)

    def test_installed_server_starts_from_the_installed_config(self):
        prefix = os.path.join(self.tmp, "prefix")
        self.install(prefix)
        server = self.start_server(config=os.path.join(prefix, "etc/disque/disque.conf"))
        self.assertEqual(opslib.redis_cli(server.port, "PING"), "PONG")

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_systemd_accepts_the_unit(self):
        # Installed without DESTDIR so that ExecStart names a binary that exists, which
        # `verify` checks. It exits 0 even on bad lines, so its output must be empty.
        prefix = os.path.join(self.tmp, "prefix")
        self.install(prefix)
        unit = os.path.join(prefix, "lib/systemd/system/disque-server.service")
        result = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))
        # The hardening: systemd's own exposure score (0 best, 10 worst) stays "OK".
        security = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], capture_output=True,
                                  text=True, timeout=60)
        match = re.search(r"Overall exposure level for disque-server.service: ([0-9.]+)", security.stdout)
        self.assertIsNotNone(match, security.stdout + security.stderr)
        self.assertLessEqual(float(match.group(1)), 2.5, security.stdout)

    def test_make_install_with_destdir(self):
        # The Makefile's target itself, from the build tree under test (INSTALL_FROM).
        env = opslib.env_for_make()
        stage = os.path.join(self.tmp, "stage")
        result = subprocess.run(["make", "--no-print-directory", "install", f"INSTALL_FROM={opslib.BUILD_DIR}",
                                 "PREFIX=/opt/dq", f"DESTDIR={stage}"],
                                cwd=opslib.SOURCE_DIR, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for path in ("opt/dq/bin/disque-server", "opt/dq/share/man/man1/disque-server.1", "opt/dq/etc/disque/disque.conf",
                     "opt/dq/lib/systemd/system/disque-server.service"):
            self.assertTrue(os.path.isfile(os.path.join(stage, path)), path)

    def test_make_install_refuses_an_unbuilt_tree(self):
        env = opslib.env_for_make()
        result = subprocess.run(["make", "--no-print-directory", "install", f"INSTALL_FROM={self.tmp}",
                                 f"DESTDIR={self.tmp}/stage"],
                                cwd=opslib.SOURCE_DIR, env=env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("build first", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "stage")))


class SupervisorNotifyTest(opslib.OpsTest):
    """Type=notify: READY=1 once clients are served, STOPPING=1 when shutdown begins."""

    def notify_socket(self, abstract):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        if abstract:
            name = f"disque-notify-test-{os.getpid()}-{id(sock)}"
            sock.bind("\0" + name)
            address = "@" + name
        else:
            address = os.path.join(self.tmp, "notify.sock")
            sock.bind(address)
        sock.settimeout(120)  # the AOF load under the sanitizers
        return sock, address

    def check_ready_then_stopping(self, abstract):
        sock, address = self.notify_socket(abstract)
        server = self.start_server(env={"NOTIFY_SOCKET": address})
        self.assertEqual(sock.recv(4096), b"READY=1")
        server.proc.terminate()
        self.assertEqual(sock.recv(4096), b"STOPPING=1")
        self.assertEqual(server.proc.wait(timeout=30), 0)

    def test_path_socket(self):
        self.check_ready_then_stopping(abstract=False)

    def test_abstract_socket(self):
        self.check_ready_then_stopping(abstract=True)

    JOBS = 200_000  # an AOF whose load takes a while (about 0.25 s here, longer under sanitizers)

    def aof_dir(self):
        """A directory holding disque.aof with JOBS jobs, written by a real server."""
        seed = self.start_server("--appendonly", "yes")
        client = redis.Redis(port=seed.port)
        self.addCleanup(client.close)
        for _ in range(self.JOBS // 10_000):
            pipe = client.pipeline(transaction=False)
            for _ in range(10_000):
                pipe.execute_command("ADDJOB", "q", "x" * 100, 0)
            pipe.execute()
        seed.proc.terminate()  # a clean shutdown: the AOF is written and fsynced
        self.assertEqual(seed.proc.wait(timeout=60), 0)
        return seed.dir

    def test_ready_comes_after_the_aof_is_loaded(self):
        # While it loads an AOF the server answers -LOADING; READY=1 must wait for the
        # load, so the first command after it sees every job.
        workdir = self.aof_dir()
        sock, address = self.notify_socket(abstract=False)
        server = self.start_server("--appendonly", "yes", workdir=workdir, env={"NOTIFY_SOCKET": address},
                                   wait=False)
        self.assertEqual(sock.recv(4096), b"READY=1")
        # Loaded jobs are active, not queued (PROTOCOL.md 8.2): count them in INFO.
        self.assertRegex(opslib.redis_cli(server.port, "INFO", "jobs"), rf"(?m)^registered_jobs:{self.JOBS}$")

    def test_a_shutdown_during_the_load_sends_no_ready_and_keeps_the_controlled_restart(self):
        # The controlled restart's second half: aof-enqueue-jobs-once yes in the config
        # file, appendonly no. SIGTERM while it loads: STOPPING=1 and never READY=1, and
        # the option stays yes in the file, so the next start loads the jobs again.
        workdir = self.aof_dir()
        config = os.path.join(self.tmp, "restart.conf")
        with open(config, "w") as f:
            f.write("appendonly no\naof-enqueue-jobs-once yes\n")
        sock, address = self.notify_socket(abstract=False)
        server = self.start_server(config=config, workdir=workdir, env={"NOTIFY_SOCKET": address}, wait=False)
        client = redis.Redis(port=server.port, socket_timeout=5)
        self.addCleanup(client.close)

        def loading():
            try:
                client.ping()
                raise AssertionError("the load ended before it could be interrupted: make the AOF bigger")
            except redis.exceptions.BusyLoadingError:
                return True
            except redis.exceptions.ConnectionError:
                return False  # not listening yet

        opslib.wait_for(loading, what="-LOADING")
        server.proc.terminate()
        self.assertEqual(server.proc.wait(timeout=60), 0, server.log())
        sock.settimeout(1)
        messages = []
        try:
            while True:
                messages.append(sock.recv(4096))
        except socket.timeout:
            pass
        self.assertEqual(messages, [b"STOPPING=1"])
        self.assertIn("AOF loading interrupted by the shutdown", server.log())
        with open(config) as f:
            self.assertRegex(f.read(), r"(?m)^aof-enqueue-jobs-once yes$")

    def test_a_bad_notify_socket_changes_nothing(self):
        server = self.start_server(env={"NOTIFY_SOCKET": os.path.join(self.tmp, "nobody-listens")})
        self.assertEqual(opslib.redis_cli(server.port, "PING"), "PONG")


if __name__ == "__main__":
    unittest.main()
