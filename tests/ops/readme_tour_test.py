"""The README's 30-second tour, run as written, so the README cannot rot.

The block after `<!-- tour -->` runs in one bash process, in the source tree, line by
line, with the ports moved to free ones: 7711 is a server this test starts (standing in
for `make run`), 7712-7714 are the `make cluster` nodes (CLUSTER_PORTS, DISQUE_SERVER and
CLUSTER_DIR come from the environment, so `make cluster` runs unchanged and builds
nothing). Every line of the block must have an expectation below: a line added to the
tour without one fails the test.
"""

import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

JOB_ID = r"D-[0-9a-f]{8}-[A-Za-z0-9+/]{24}-[0-9a-f]{4}"


def tour_lines(readme):
    """The commands of the fenced block that follows the `<!-- tour -->` marker."""
    match = re.search(r"<!-- tour -->\s*```sh\n(.*?)```", readme, re.S)
    if not match:
        raise AssertionError("README.md has no ```sh block after <!-- tour -->")
    return [line for line in match.group(1).splitlines() if line.strip()]


def command_of(line):
    """The line without its trailing comment (the comments show the replies)."""
    return re.sub(r"\s+#.*$", "", line).strip()


class ReadmeTourTest(opslib.OpsTest):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.cluster_base = opslib.free_port(count=3)
        self.cluster_dir = os.path.join(self.tmp, "cluster")
        self.cluster_ports = [self.cluster_base + i for i in range(3)]
        self.addCleanup(self.kill_cluster)

    def kill_cluster(self):
        """Whatever `make cluster-stop` left (a failed run): killed by their pidfiles."""
        for port in self.cluster_ports:
            try:
                with open(os.path.join(self.cluster_dir, str(port), "disque.pid")) as f:
                    pid = int(f.read())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass

    def move_ports(self, line):
        ports = {"7711": self.server.port}
        ports.update({str(7712 + i): port for i, port in enumerate(self.cluster_ports)})
        return re.sub(r"\b771[1-4]\b", lambda m: str(ports[m.group(0)]), line)

    def run_tour(self, lines):
        """Runs the lines in one bash; returns [(exit status, output)] per line."""
        script = []
        for i, line in enumerate(lines):
            out = os.path.join(self.tmp, f"out.{i}")
            script.append(f"{{ {self.move_ports(command_of(line))}\n}} > {out} 2>&1; echo $? > {out}.rc")
        env = opslib.env_for_make(DISQUE_SERVER=opslib.SERVER, CLUSTER_DIR=self.cluster_dir,
                                  CLUSTER_PORTS=" ".join(map(str, self.cluster_ports)))
        subprocess.run(["bash", "-c", "\n".join(script)], cwd=opslib.SOURCE_DIR, env=env, timeout=120,
                       check=True)
        results = []
        for i in range(len(lines)):
            out = os.path.join(self.tmp, f"out.{i}")
            with open(out) as f, open(out + ".rc") as rc:
                results.append((int(rc.read()), f.read()))
        return results

    def test_every_command_gives_the_reply_shown(self):
        lines = tour_lines(opslib.read_source("README.md"))
        results = self.run_tour(lines)
        job_ids = {}

        def expect(output, pattern, what):
            self.assertRegex(output, pattern, what)

        for line, (status, output) in zip(lines, results):
            command = command_of(line)
            what = f"README tour line `{command}` gave exit {status}:\n{output}"
            self.assertEqual(status, 0, what)
            lines_out = output.splitlines()
            if command.startswith("id=$(redis-cli") and "ADDJOB greetings" in command:
                self.assertEqual(output, "", what)
            elif command == "echo $id":
                expect(output, rf"^{JOB_ID}\n$", what)
                job_ids["greetings"] = output.strip()
            elif "QLEN greetings" in command:
                # The first QLEN sees the job; the one after the ACK sees none.
                expected = "0" if "ACKJOB" in " ".join(command_of(l) for l in lines[:lines.index(line)]) else "1"
                self.assertEqual(output.strip(), expected, what)
            elif "GETJOB" in command and "FROM greetings" in command:
                self.assertEqual(lines_out, ["greetings", job_ids["greetings"], "hello"], what)
            elif "ACKJOB $id" in command:
                self.assertEqual(output.strip(), "1", what)
            elif command == "make cluster":
                # The lines run before these checks: HELLO below shows the nodes worked.
                self.assertIn("Cluster up on ports " + " ".join(map(str, self.cluster_ports)), output, what)
            elif command.endswith("HELLO"):
                # HELLO: the format version, this node's ID, then ID, address, port and
                # priority per node: three distinct IDs, each node's port once.
                self.assertEqual(len({l for l in lines_out if re.fullmatch(r"[0-9a-f]{40}", l)}), 3, what)
                for port in self.cluster_ports:
                    self.assertIn(str(port), lines_out, what)
            elif "ADDJOB orders" in command:
                expect(output, rf"^{JOB_ID}\n$", what)
                job_ids["orders"] = output.strip()
            elif "GETJOB" in command and "FROM orders" in command:
                self.assertEqual(lines_out, ["orders", job_ids["orders"], "order 1"], what)
            elif command == "make cluster-stop":
                for port in self.cluster_ports:
                    opslib.wait_for(lambda p=port: not opslib.pings(p), what=f"node {port} to stop")
            else:
                self.fail(f"README tour line `{command}` has no expectation in {__file__}")


if __name__ == "__main__":
    unittest.main()
