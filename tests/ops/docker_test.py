"""The container files: docker/Dockerfile, docker/compose.yaml, docker/build.sh,
docker/cluster-join.sh and .dockerignore.

CI has no Docker daemon, so nothing here builds or runs an image. Instead the files are
parsed and checked against each other and against what the build really installs, and
what would run inside the containers runs on the host: the image's command line (with
the sample config, bound to loopback on a free port), cluster-join.sh against three real
servers, and build.sh against a stand-in cmake that records its calls.

Run by hand (see opslib.py):
    DISQUE_SERVER=build/disque-server DISQUE_SOURCE_DIR=. DISQUE_BUILD_DIR=build \
        /usr/bin/python3 tests/ops/docker_test.py
"""

import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import OpsTest, free_port, redis_cli, source_path, wait_for  # noqa: E402
import opslib  # noqa: E402

NODES = ("disque1", "disque2", "disque3")
CLIENT_PORT = 7711  # the image's: the sample config's port
BUILD_PACKAGES = {"cmake", "make", "g++", "pkg-config", "libasio-dev", "libspdlog-dev", "libfmt-dev",
                  "libcli11-dev"}
# Already in debian:12-slim (Essential, or needed by apt itself).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1"}


# --- Dockerfile ---------------------------------------------------------------------------

def parse_dockerfile(text):
    """The stages of a Dockerfile: [{"image", "name", "instructions": [(KEYWORD, args)]}].

    Enough of Docker's syntax for our file: comments, blank lines, backslash
    continuations (comment lines inside one are dropped, as Docker does)."""
    stages = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        current = ""
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append({"image": words[0], "name": name, "instructions": []})
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1]["instructions"].append((keyword, args))
    return stages


def instructions(stage, keyword):
    return [args for kw, args in stage["instructions"] if kw == keyword]


def exec_form(args):
    """The list of an exec-form (JSON) instruction, or None for the shell form."""
    return json.loads(args) if args.startswith("[") else None


def parse_copy(args):
    """COPY's flags ({"from": "build"}), sources and destination."""
    words = exec_form(args) or shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words[:-1], words[-1]


def apt_packages(stage):
    """Every package an `apt-get install` of the stage's RUN instructions names."""
    packages = set()
    for run in instructions(stage, "RUN"):
        for command in re.split(r"&&|;|\|\|", run):
            words = command.split()
            if "apt-get" in words and "install" in words:
                packages.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
    return packages


def read_dockerfile():
    return parse_dockerfile(opslib.read_source("docker", "Dockerfile"))


def image_command(stages):
    """The runtime stage's ENTRYPOINT followed by its CMD (both exec form)."""
    runtime = stages[-1]
    entrypoint = instructions(runtime, "ENTRYPOINT")
    cmd = instructions(runtime, "CMD")
    argv = []
    for found in (entrypoint, cmd):
        if found:
            words = exec_form(found[-1])
            assert words is not None, f"shell form: {found[-1]} (the server would not be PID 1)"
            argv += words
    return argv


# --- .dockerignore ------------------------------------------------------------------------

def dockerignore_patterns():
    path = source_path(".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


def _pattern_regex(pattern):
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(patterns, path):
    """Whether Docker leaves `path` (relative to the context) out: the last pattern that
    matches it or one of its parent directories decides; `!` re-includes."""
    parts = path.split("/")
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(os.path.normpath(pattern.lstrip("!").strip("/")))
        if any(regex.match("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


class DockerfileTest(OpsTest):
    def setUp(self):
        super().setUp()
        self.stages = read_dockerfile()
        self.build, self.runtime = self.stages[0], self.stages[-1]

    def test_two_stages_a_debian_build_and_a_slim_runtime(self):
        self.assertEqual(len(self.stages), 2, [s["image"] for s in self.stages])
        self.assertEqual(self.build["image"], "debian:12")
        self.assertEqual(self.build["name"], "build")
        self.assertEqual(self.runtime["image"], "debian:12-slim")

    def build_sh_staging_dir(self):
        """The staging directory the build stage's `docker/build.sh SRC STAGING` fills."""
        for run in instructions(self.build, "RUN"):
            words = shlex.split(run)
            if "docker/build.sh" in words:
                i = words.index("docker/build.sh")
                return words[i + 2].rstrip("/")
        self.fail("the build stage does not RUN docker/build.sh")

    def test_the_build_stage_installs_the_build_packages_and_runs_build_sh(self):
        self.assertLessEqual(BUILD_PACKAGES, apt_packages(self.build))
        self.assertTrue(os.access(source_path("docker", "build.sh"), os.X_OK),
                        "docker/build.sh is not executable")
        self.assertTrue(self.build_sh_staging_dir().startswith("/"))
        copies = [parse_copy(args) for args in instructions(self.build, "COPY")]
        self.assertIn((".", "/src"), [(srcs[0], dest.rstrip("/")) for _, srcs, dest in copies],
                      "the build stage must COPY the source tree to /src, which build.sh builds")

    def test_the_runtime_stage_runs_as_a_fixed_non_root_user_with_a_data_volume(self):
        self.assertNotIn("-dev", " ".join(apt_packages(self.runtime)), "a -dev package in the runtime stage")
        self.assertIn("redis-tools", apt_packages(self.runtime), "the healthcheck runs redis-cli")
        users = instructions(self.runtime, "USER")
        self.assertTrue(users, "no USER: the server would run as root")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("root", "0"))
        runs = " ".join(instructions(self.runtime, "RUN"))
        self.assertRegex(runs, rf"useradd\b[^&;]*--uid [1-9][0-9]*[^&;]* {re.escape(user)}\b",
                         "the user is created with a fixed uid")
        self.assertRegex(runs, rf"chown {re.escape(user)}(:\S+)? /data\b", "/data is not the user's")
        self.assertEqual(instructions(self.runtime, "WORKDIR")[-1], "/data")
        volumes = instructions(self.runtime, "VOLUME")
        self.assertTrue(volumes)
        self.assertIn("/data", exec_form(volumes[-1]) or volumes[-1].split())

    def test_exposes_the_client_and_bus_ports_and_checks_health_with_ping(self):
        exposed = {int(port.split("/")[0])
                   for args in instructions(self.runtime, "EXPOSE") for port in args.split()}
        self.assertEqual(exposed, {CLIENT_PORT, CLIENT_PORT + 10000})
        checks = instructions(self.runtime, "HEALTHCHECK")
        self.assertEqual(len(checks), 1)
        self.assertRegex(checks[0], rf"\bCMD .*redis-cli (-h \S+ )?-p {CLIENT_PORT} PING\b.*\| *grep -q PONG")

    def test_the_runtime_installs_every_library_the_binary_links(self):
        if not shutil.which("ldd") or not shutil.which("dpkg"):
            self.skipTest("needs ldd and dpkg")
        ldd = subprocess.run(["ldd", opslib.SERVER], capture_output=True, text=True, check=True).stdout
        libraries = re.findall(r"=> (/\S+)", ldd) + re.findall(r"^\s*(/\S+) \(", ldd, re.M)
        packages = set()
        for lib in libraries:
            if re.search(r"/lib(asan|ubsan|tsan|lsan)\.so", lib):
                continue  # a sanitizer build's runtime, not the image's
            real = os.path.realpath(lib)
            candidates = {lib, real}
            for path in list(candidates):  # merged /usr: dpkg knows one spelling
                candidates.add(path[4:] if path.startswith("/usr/") else "/usr" + path)
            found = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True).stdout
            self.assertTrue(found, f"no Debian package has {lib}")
            packages.add(found.splitlines()[0].split(":")[0])
        missing = packages - apt_packages(self.runtime) - BASE_IMAGE_PACKAGES
        self.assertFalse(missing, f"the binary links libraries of {missing}, "
                                  "which the runtime stage does not install")

    def test_every_file_copied_from_the_build_stage_is_one_the_build_installs(self):
        staging = self.build_sh_staging_dir()
        from_build = []
        for args in instructions(self.runtime, "COPY"):
            flags, srcs, dest = parse_copy(args)
            if flags.get("from") == "build":
                for src in srcs:
                    self.assertTrue(src.startswith(staging + "/"),
                                    f"{src} is not in build.sh's staging dir {staging}")
                    from_build.append(src[len(staging):])
        self.assertIn("/usr/bin/disque-server", from_build)
        self.assertIn("/etc/disque/disque.conf", from_build)
        # Not build.sh itself (minutes): `cmake --install` of the build tree ctest runs in,
        # with the same --prefix and DESTDIR; copying files takes a moment.
        destdir = os.path.join(self.tmp, "staging")
        result = subprocess.run(["cmake", "--install", opslib.BUILD_DIR, "--prefix", "/usr"],
                                env=dict(os.environ, DESTDIR=destdir), capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, f"cmake --install failed:\n{result.stdout}{result.stderr}")
        for path in from_build:
            self.assertTrue(os.path.exists(destdir + path), f"the image copies {staging}{path}, which "
                            f"cmake --install does not install:\n{result.stdout}")

    def test_files_copied_from_the_context_exist_and_are_not_dockerignored(self):
        patterns = dockerignore_patterns()
        for stage in self.stages:
            for args in instructions(stage, "COPY"):
                flags, srcs, _ = parse_copy(args)
                if "from" in flags or srcs == ["."]:
                    continue
                for src in srcs:
                    self.assertTrue(os.path.exists(source_path(src)), f"COPY {src}: no such file")
                    self.assertFalse(dockerignored(patterns, src), f"COPY {src}: excluded by .dockerignore")
        self.assertTrue(os.access(source_path("docker", "cluster-join.sh"), os.X_OK),
                        "cluster-join.sh is not executable")

    def test_dockerignore_keeps_the_sources_and_drops_git_and_build_trees(self):
        patterns = dockerignore_patterns()
        for path in (".git", "build", "build-dev", "build-release/CMakeCache.txt", "nodes.conf"):
            self.assertTrue(dockerignored(patterns, path), f"{path} goes into the build context")
        kept = ["CMakeLists.txt"]
        for top in ("src", "include", "docs", "docker"):
            for dirpath, _, files in os.walk(source_path(top)):
                kept += [os.path.relpath(os.path.join(dirpath, f), source_path()) for f in files]
        for path in kept:
            self.assertFalse(dockerignored(patterns, path), f"{path} is left out of the build context")

    def test_the_images_command_starts_the_server(self):
        """The ENTRYPOINT (and CMD) with disque1's compose arguments, the sample config and
        --bind 127.0.0.1 instead of 0.0.0.0, in a fresh working directory (the image's /data)."""
        argv = image_command(self.stages) + compose_service(read_compose(), "disque1")["command"]
        self.assertEqual(argv[0], "disque-server")
        copied_to = [parse_copy(args)[2] for args in instructions(self.runtime, "COPY")]
        self.assertIn("/usr/bin/disque-server", copied_to)
        self.assertEqual(argv[1], "/etc/disque/disque.conf")  # the sample, copied from the staging dir
        sample = source_path("docker", "disque.conf")
        args = argv[2:]
        self.assertIn("--bind", args)
        args[args.index("--bind") + 1] = "127.0.0.1"
        self.assertNotIn("--port", args)  # the config's port: the one EXPOSEd and health-checked
        self.assertEqual(config_directive(sample, "port", str(CLIENT_PORT)), str(CLIENT_PORT))
        # The image starts in WORKDIR /data and relies on the config not changing directory.
        self.assertIsNone(config_directive(sample, "dir"),
                          "the sample config sets dir: the data would not be in /data")

        announced = args[args.index("--cluster-announce-ip") + 1] if "--cluster-announce-ip" in args else ""
        server = self.start_server(*args, config=sample)
        self.assertEqual(redis_cli(server.port, "PING"), "PONG")
        def config_get(name):
            return redis_cli(server.port, "CONFIG", "GET", name).split()[1:]

        self.assertEqual(config_get("protected-mode"), ["no"])
        self.assertEqual(config_get("daemonize"), ["no"])
        self.assertEqual(config_get("logfile"), [], "the log must go to standard output: docker logs")
        self.assertIn(f"{announced}:{server.port} myself", redis_cli(server.port, "CLUSTER", "NODES"))
        # The state the volume keeps is in the working directory.
        wait_for(lambda: os.path.exists(os.path.join(server.dir, "nodes.conf")),
                 what="nodes.conf in the working directory")
        if config_get("appendonly") == ["yes"]:
            self.assertTrue(os.path.exists(os.path.join(server.dir, "disque.aof")))


def config_directive(path, name, default=None):
    """The last value of an active directive in a config file, or `default`."""
    value = default
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if words and not words[0].startswith("#") and words[0].lower() == name:
                value = " ".join(words[1:])
    return value


# --- compose.yaml -------------------------------------------------------------------------

def read_compose():
    with open(source_path("docker", "compose.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def compose_service(compose, name):
    service = compose["services"][name]
    for key in ("command", "entrypoint"):
        if isinstance(service.get(key), str):
            service[key] = shlex.split(service[key])
    return service


class ComposeTest(OpsTest):
    def setUp(self):
        super().setUp()
        self.compose = read_compose()
        self.services = self.compose["services"]

    def test_three_nodes_and_an_init_service_from_the_dockerfile(self):
        self.assertEqual(set(self.services), set(NODES) | {"init"})
        images = set()
        for name in (*NODES, "init"):
            service = self.services[name]
            build = service["build"]
            context = os.path.join(source_path("docker"), build["context"])
            dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
            expected = source_path("docker", "Dockerfile")
            self.assertEqual(os.path.realpath(dockerfile), os.path.realpath(expected), name)
            self.assertEqual(os.path.realpath(context), os.path.realpath(source_path()),
                             f"{name}: the context must be the source tree")
            images.add(service.get("image"))
        self.assertEqual(len(images), 1, f"one image for every service: {images}")

    def test_each_node_has_its_own_volume_and_a_loopback_port(self):
        host_ports = set()
        volumes = set()
        for name in NODES:
            service = self.services[name]
            mounts = [v.split(":") for v in service["volumes"]]
            data = [m[0] for m in mounts if m[1] == "/data"]
            self.assertEqual(len(data), 1, f"{name} mounts no volume at /data")
            self.assertIn(data[0], self.compose["volumes"], f"{name}: {data[0]} is not a named volume")
            volumes.add(data[0])
            (port,) = service["ports"]
            host_ip, host_port, container_port = str(port).split("/")[0].split(":")
            self.assertEqual(host_ip, "127.0.0.1", f"{name} is published on every interface of the host")
            self.assertEqual(int(container_port), CLIENT_PORT)
            host_ports.add(int(host_port))
        self.assertEqual(len(volumes), len(NODES), "nodes share a volume")
        self.assertEqual(host_ports, {7711, 7712, 7713})

    def test_each_node_announces_its_static_address(self):
        networks = self.compose["networks"]
        announced = set()
        for name in NODES:
            command = compose_service(self.compose, name)["command"]
            self.assertIn("--cluster-announce-ip", command)
            ip = command[command.index("--cluster-announce-ip") + 1]
            ipaddress.ip_address(ip)  # config.cpp accepts numeric addresses only
            (network, settings), = self.services[name]["networks"].items()
            self.assertEqual(settings["ipv4_address"], ip, f"{name} announces another address than its own")
            subnets = [ipaddress.ip_network(c["subnet"]) for c in networks[network]["ipam"]["config"]]
            self.assertTrue(any(ipaddress.ip_address(ip) in s for s in subnets), f"{ip} is outside {subnets}")
            announced.add(ip)
        self.assertEqual(len(announced), len(NODES))

    def test_nodes_have_a_healthcheck(self):
        in_image = instructions(read_dockerfile()[-1], "HEALTHCHECK")
        for name in NODES:
            check = self.services[name].get("healthcheck")
            if check is None:
                self.assertTrue(in_image, f"{name}: no healthcheck in compose.yaml nor in the Dockerfile")
            else:
                self.assertFalse(check.get("disable"), name)
                test = check.get("test", "")
                self.assertIn("PING", " ".join(test) if isinstance(test, list) else test, name)

    def test_init_joins_the_three_nodes_once_they_are_healthy(self):
        init = compose_service(self.compose, "init")
        self.assertEqual(init.get("restart"), "no")
        self.assertEqual({n: d.get("condition") for n, d in init["depends_on"].items()},
                         {n: "service_healthy" for n in NODES})
        argv = init["entrypoint"] + init.get("command", [])
        self.assertEqual(os.path.basename(argv[0]), "cluster-join.sh")
        # The image has it, where the entrypoint names it.
        copies = [parse_copy(a) for a in instructions(read_dockerfile()[-1], "COPY")]
        dest = [d for _, srcs, d in copies if srcs == ["docker/cluster-join.sh"]]
        self.assertTrue(dest, "the image does not contain cluster-join.sh")
        on_path = os.path.dirname(dest[0]) in ("/usr/local/bin", "/usr/bin")
        self.assertTrue(argv[0] == dest[0] or on_path, f"the image has it at {dest[0]}")
        targets = argv[1:]
        self.assertEqual(len(targets), len(NODES), targets)
        for name in NODES:
            (network, settings), = self.services[name]["networks"].items()
            self.assertIn(network, init["networks"], f"init is not on {name}'s network")
            names = {f"{name}:{CLIENT_PORT}", f"{settings['ipv4_address']}:{CLIENT_PORT}"}
            self.assertTrue(names & set(targets), f"init does not join {name}: {targets}")
        self.assertTrue(init.get("healthcheck", {}).get("disable"),
                        "init would inherit the image's healthcheck")


# --- build.sh -----------------------------------------------------------------------------

FAKE_CMAKE = """#!/bin/sh
printf 'DESTDIR=%s %s\\n' "${DESTDIR-unset}" "$*" >> "$FAKE_CMAKE_LOG"
case "$1 ${FAKE_CMAKE_FAIL-}" in "--build --build") exit 1 ;; esac
# --install lays out the binary, as the real install rules do (unless told not to).
if [ "$1" = --install ] && [ -z "${FAKE_CMAKE_INSTALL_NOTHING-}" ]; then
  mkdir -p "$DESTDIR/usr/bin" && printf '#!/bin/sh\\n' > "$DESTDIR/usr/bin/disque-server" &&
    chmod +x "$DESTDIR/usr/bin/disque-server"
fi
"""


class BuildScriptTest(OpsTest):
    def run_build_sh(self, *args, fail_build=False, path=None, env=None):
        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir, exist_ok=True)
        with open(os.path.join(bin_dir, "cmake"), "w") as f:
            f.write(FAKE_CMAKE)
        os.chmod(os.path.join(bin_dir, "cmake"), 0o755)
        self.log = os.path.join(self.tmp, "cmake.log")
        full_env = dict(os.environ, PATH=path or f"{bin_dir}:{os.environ['PATH']}", FAKE_CMAKE_LOG=self.log)
        full_env.pop("BUILD_DIR", None)
        full_env.update(env or {})
        if fail_build:
            full_env["FAKE_CMAKE_FAIL"] = "--build"
        return subprocess.run(["/bin/sh", source_path("docker", "build.sh"), *args], cwd=self.tmp,
                              env=full_env, capture_output=True, text=True, timeout=60)

    def calls(self):
        with open(self.log) as f:
            return [line.split() for line in f]

    def make_source(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        open(os.path.join(src, "CMakeLists.txt"), "w").close()
        return src

    def test_configures_builds_and_installs_into_the_staging_dir(self):
        src = self.make_source()
        result = self.run_build_sh("src", "staging", "-DEXTRA=1")
        self.assertEqual(result.returncode, 0, result.stderr)
        build_dir = os.path.join(src, "build-release")
        staging = os.path.join(self.tmp, "staging")
        configure, build, install = self.calls()
        self.assertEqual(configure[1:5], ["-S", src, "-B", build_dir])
        for flag in ("-DDISQUE_BUILD_TESTS=OFF", "-DDISQUE_BUILD_BENCH=OFF", "-DCMAKE_INSTALL_PREFIX=/usr",
                     "-DEXTRA=1"):
            self.assertIn(flag, configure)
        build_types = {"-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"}
        self.assertTrue(build_types & set(configure), configure)
        self.assertEqual(build[1:3], ["--build", build_dir])
        self.assertEqual(install, [f"DESTDIR={staging}", "--install", build_dir, "--prefix", "/usr"])
        self.assertTrue(os.path.isdir(staging))

    def test_uses_build_dir_from_the_environment(self):
        self.make_source()
        build_dir = os.path.join(self.tmp, "elsewhere")
        result = self.run_build_sh("src", "staging", env={"BUILD_DIR": build_dir})
        self.assertEqual(result.returncode, 0, result.stderr)
        calls = self.calls()
        self.assertEqual(len(calls), 3)
        for call in calls:
            self.assertIn(build_dir, call)

    def test_a_failed_build_installs_nothing_and_fails(self):
        self.make_source()
        result = self.run_build_sh("src", "staging", fail_build=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual([call[1] for call in self.calls()], ["-S", "--build"])

    def test_an_install_without_the_binary_fails(self):
        self.make_source()
        result = self.run_build_sh("src", "staging", env={"FAKE_CMAKE_INSTALL_NOTHING": "1"})
        self.assertEqual(result.returncode, 1)
        self.assertIn("did not install", result.stderr)

    def test_without_cmake_it_says_so(self):
        self.make_source()
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        result = self.run_build_sh("src", "staging", path=empty)
        self.assertEqual(result.returncode, 1)
        self.assertIn("cmake is not installed", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "staging")))

    def test_arguments_are_checked(self):
        self.assertEqual(self.run_build_sh("src").returncode, 2)
        result = self.run_build_sh("nowhere", "staging")
        self.assertEqual(result.returncode, 1)
        self.assertIn("no CMakeLists.txt", result.stderr)


# --- cluster-join.sh ----------------------------------------------------------------------

class ClusterJoinTest(OpsTest):
    def join(self, *addresses, timeout=30):
        start = time.monotonic()
        result = subprocess.run([source_path("docker", "cluster-join.sh"), *addresses],
                                env=dict(os.environ, JOIN_TIMEOUT=str(timeout)), capture_output=True,
                                text=True, timeout=timeout + 30)
        return result, time.monotonic() - start

    def node_ids(self, port):
        """The IDs CLUSTER NODES lists as full members (not in handshake, not failing)."""
        lines = redis_cli(port, "CLUSTER", "NODES").splitlines()
        return {line.split()[0] for line in lines if not re.search(r"handshake|fail|noaddr", line.split()[2])}

    def test_joins_three_servers(self):
        base = free_port(count=3)
        servers = [self.start_server(port=base + i) for i in range(3)]
        ids = {redis_cli(s.port, "CLUSTER", "MYID") for s in servers}
        for s in servers:
            self.assertEqual(self.node_ids(s.port), {redis_cli(s.port, "CLUSTER", "MYID")})
        # A host name too: resolved, since CLUSTER MEET takes numeric addresses only.
        result, _ = self.join(f"127.0.0.1:{base}", f"127.0.0.1:{base + 1}", f"localhost:{base + 2}")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for s in servers:
            self.assertEqual(self.node_ids(s.port), ids, f"node {s.port}")
        # Again, on the joined cluster: nothing to do, still success.
        result, _ = self.join(f"127.0.0.1:{base}", f"127.0.0.1:{base + 1}", f"127.0.0.1:{base + 2}")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for s in servers:
            self.assertEqual(self.node_ids(s.port), ids, f"node {s.port}")

    def test_fails_quickly_when_a_node_does_not_answer(self):
        base = free_port(count=3)
        self.start_server(port=base)
        self.start_server(port=base + 1)
        addresses = [f"127.0.0.1:{base + i}" for i in range(3)]
        result, elapsed = self.join(*addresses, timeout=2)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn(f"127.0.0.1:{base + 2} did not answer PING within 2 s", result.stderr)
        self.assertLess(elapsed, 15)

    def test_fails_when_the_nodes_never_see_each_other(self):
        """The third node's bus is not at port + 10000, where CLUSTER MEET looks for it:
        every node answers, but the cluster never forms."""
        base = free_port(count=3)
        self.start_server(port=base)
        self.start_server(port=base + 1)
        self.start_server("--cluster-port", str(free_port()), port=base + 2)
        addresses = [f"127.0.0.1:{base + i}" for i in range(3)]
        result, elapsed = self.join(*addresses, timeout=5)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("the cluster did not form within 5 s", result.stderr)
        self.assertLess(elapsed, 25)

    def test_arguments_are_checked(self):
        for args in ([], ["127.0.0.1:7711"], ["127.0.0.1:7711", "127.0.0.1"],
                     ["127.0.0.1:7711", "127.0.0.1:x"]):
            result, _ = self.join(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn("usage", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
