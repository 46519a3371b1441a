"""The sample config (docker/disque.conf) and the man page (docs/disque-server.1) against
the real binary: the sample loads as it is, every directive the binary accepts is in
both, they name no directive that does not exist, the sample's commented examples show
the defaults, and the man page renders cleanly and documents the command line.

The list of directives comes from the binary (`disque-server --help` prints each one as
a `--name` flag), never from a list kept here, so a directive added to the option table
and not documented fails this test.

Conventions of the sample, which the parser below follows (the file's header says so):
    * an active line is `name args...`, as the server reads it;
    * a commented example is `# name args...` (a hash, one space, a lowercase name) in a
      paragraph of examples only, after a line holding just `#` (or a blank line, or an
      active line);
    * every other comment is an explanation, and a paragraph of explanation starts with
      anything but a lowercase word (so that it cannot be mistaken for an example).

Run by hand (see opslib.py):
    DISQUE_SERVER=build-dev/disque-server DISQUE_SOURCE_DIR=. DISQUE_BUILD_DIR=build-dev \\
        /usr/bin/python3 tests/ops/docs_config_test.py
"""

import csv
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from opslib import SERVER, OpsTest, read_source, source_path, wait_for  # noqa: E402

SAMPLE = ("docker", "disque.conf")
MAN_PAGE = ("docs", "disque-server.1")

# The command-line options that are not directives: the man page's OPTIONS section
# documents them. A new one shows up in --help; until it is added here (and to the man
# page) this test takes it for a directive and fails, which is the point.
COMMAND_LINE_OPTIONS = {"help", "version", "check-aof", "fix"}

# The harness (opslib.Server) passes these after the config file, so a running server
# shows the harness's values, not the file's.
SET_BY_HARNESS = {"port", "bind", "dir"}

# Examples with no default value to show: include and rename-command take no value,
# and the default of dir is wherever the server starts.
NO_DEFAULT = {"include", "rename-command", "dir"}

MAN_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION", "SIGNALS",
                "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO")


# ---- the binary ----

@functools.lru_cache(maxsize=None)
def help_text():
    """`disque-server --help`: today it exits 1 and writes to stderr (as Disque); either
    stream and either status is accepted."""
    result = subprocess.run([SERVER, "--help"], capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


# An option line of CLI11's help: indented, `--name` or `-x,--name`, then the rest.
HELP_FLAG = re.compile(r"^\s+((?:-[A-Za-z],\s*)?--[a-z][a-z0-9-]*)(?=[\s=]|$)")
# A group heading: unindented, ends with a colon ("Options:", "Config directives (...):").
HELP_GROUP = re.compile(r"^(\S.*):\s*$")


@functools.lru_cache(maxsize=None)
def help_entries():
    """[(group heading, [spellings], description)] for every option of --help, in order,
    e.g. ("Options", ["-h", "--help"], "TEXT Print this help and exit"). A description
    CLI11 wrapped onto the next lines is joined."""
    entries = []
    group = ""
    for line in help_text().splitlines():
        heading = HELP_GROUP.match(line)
        m = HELP_FLAG.match(line)
        if heading:
            group = heading.group(1)
        elif m:
            spellings = [s.strip() for s in m.group(1).split(",")]
            entries.append((group, spellings, line[m.end():].strip()))
        elif line.strip() and entries and line.startswith(" "):
            g, spellings, text = entries[-1]
            entries[-1] = (g, spellings, (text + " " + line.strip()).strip())
    return entries


def help_flags():
    """[(group heading, [spellings])] for every option line of --help."""
    return [(group, spellings) for group, spellings, _ in help_entries()]


def help_defaults():
    """{directive: default} for the directives whose --help line ends in "(default: X)"."""
    defaults = {}
    for _, spellings, text in help_entries():
        m = re.search(r"\(default: (.*)\)$", text)
        if m and long_name(spellings) not in COMMAND_LINE_OPTIONS:
            defaults[long_name(spellings)] = m.group(1).strip('"')
    return defaults


def long_name(spellings):
    return next(s[2:] for s in spellings if s.startswith("--"))


@functools.lru_cache(maxsize=None)
def directives():
    """Every directive the binary accepts: its --help flags but the command-line options."""
    return sorted(long_name(s) for _, s in help_flags() if long_name(s) not in COMMAND_LINE_OPTIONS)


@functools.lru_cache(maxsize=None)
def version():
    result = subprocess.run([SERVER, "--version"], capture_output=True, text=True, timeout=30)
    m = re.search(r"\bv=(\S+)", result.stdout)
    if result.returncode != 0 or not m:
        raise AssertionError(f"--version: exit {result.returncode}: "
                             f"{result.stdout!r} {result.stderr!r}")
    return m.group(1)


def config_get(port, name):
    """CONFIG GET name as {name: value} (redis-cli --csv keeps empty values)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "--csv", "CONFIG", "GET", name],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    row = next(csv.reader([out.strip()]), []) if out.strip() else []
    return dict(zip(row[0::2], row[1::2]))


# ---- the sample config ----

EXAMPLE = re.compile(r"^# ([a-z][a-z0-9-]*)(?: (.*))?$")


@functools.lru_cache(maxsize=None)
def parse_sample(text):
    """(active, examples, problems). active: [(line_no, name, [args])]; examples:
    [(line_no, name, "name args" as it would be uncommented)]; problems: lines that break
    the conventions of the module docstring."""
    active, examples, problems = [], [], []
    previous = "break"  # "break" (blank, "#" alone, banner, active), "example", "prose"
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line == "#" or line.startswith("##"):
            previous = "break"
            continue
        if not line.startswith("#"):
            try:
                words = shlex.split(line)
            except ValueError as e:
                problems.append(f"line {no}: {line!r}: {e}")
                continue
            active.append((no, words[0].lower(), words[1:]))
            previous = "break"
            continue
        example = EXAMPLE.match(line)
        if previous == "example" and not example:
            problems.append(f"line {no}: {line!r}: an explanation right after a commented example "
                            "(separate them with a line holding just '#')")
        if example and previous in ("break", "example"):
            examples.append((no, example.group(1), line[2:]))
            previous = "example"
        else:
            previous = "prose"
    return active, examples, problems


def sample():
    return parse_sample(read_source(*SAMPLE))


def memory_bytes(value):
    """A config-file memory value in bytes, or None if it is not one."""
    m = re.fullmatch(r"(\d+)(b|k|kb|m|mb|g|gb)?", value.lower())
    if not m:
        return None
    units = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
             "g": 1000 ** 3, "gb": 1024 ** 3}
    return int(m.group(1)) * units[m.group(2)]


# ---- the man page ----

def troff_plain(line):
    """The text of one troff line: macro name, quotes and font escapes dropped."""
    line = re.sub(r"^\.(?:B|I|BR|BI|IB|IR|RB|RI)\s+", "", line)
    line = re.sub(r"\\f(?:\[[^]]*\]|\(..|.)", "", line)
    for escape, text in (("\\-", "-"), ("\\(dq", '"'), ("\\(aq", "'"), ("\\e", "\\"),
                         ("\\&", ""), ("\\%", ""), ("\\ ", " ")):
        line = line.replace(escape, text)
    return line.replace('"', " ").strip()


@functools.lru_cache(maxsize=None)
def man_sections():
    """{section name: [lines]} of the man page source."""
    sections = {}
    current = None
    for line in read_source(*MAN_PAGE).splitlines():
        if line.startswith(".SH "):
            current = line[4:].strip().strip('"')
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def tp_tags(lines):
    """The tag line of every .TP paragraph, as plain text."""
    return [troff_plain(lines[i + 1]) for i, line in enumerate(lines[:-1]) if line.strip() == ".TP"]


def man_directives():
    """The first word of every .TP tag under CONFIGURATION: the directives it documents."""
    return [tag.split()[0] for tag in tp_tags(man_sections().get("CONFIGURATION", [])) if tag]


def man_directive_texts():
    """{directive: the plain text of its .TP entry under CONFIGURATION}."""
    lines = man_sections().get("CONFIGURATION", [])
    texts = {}
    i = 0
    while i < len(lines) - 1:
        if lines[i].strip() != ".TP":
            i += 1
            continue
        name = troff_plain(lines[i + 1]).split()[0]
        body = []
        i += 2
        while i < len(lines) and not re.match(r"\.(TP|SS|SH|PP|P|LP)\b", lines[i]):
            body.append(troff_plain(lines[i]))
            i += 1
        texts[name] = " ".join(body)
    return texts


class HelpParsingTest(OpsTest):
    """The rest of the file relies on this parsing of --help; if the help's format
    changes, this says so instead of the others passing on an empty list."""

    def test_help_lists_the_command_line_options_and_the_directives(self):
        names = [long_name(s) for _, s in help_flags()]
        self.assertTrue(COMMAND_LINE_OPTIONS <= set(names),
                        f"--help lacks {COMMAND_LINE_OPTIONS - set(names)}:\n{help_text()}")
        # A few directives of every kind, including the two the option table adds.
        for name in ("port", "bind", "appendonly", "client-output-buffer-limit", "threads",
                     "protected-mode", "include", "rename-command"):
            self.assertIn(name, directives(), help_text())
        self.assertGreaterEqual(len(directives()), 45, directives())

    def test_directive_group_holds_exactly_the_directives(self):
        # When --help puts the directives in a group of their own, that group and the
        # list above must agree: a new command-line option would otherwise be taken for
        # a directive.
        groups = {g for g, _ in help_flags() if "directive" in g.lower()}
        self.assertTrue(groups, "--help has no group of directives")
        grouped = sorted(long_name(s) for g, s in help_flags() if g in groups)
        self.assertEqual(grouped, directives(),
                         "flags outside the directive group that are not in COMMAND_LINE_OPTIONS, "
                         "or the reverse")


class SampleConfigTest(OpsTest):

    def test_sample_config_loads_as_is_and_its_settings_apply(self):
        server = self.start_server(config=source_path(*SAMPLE))
        active, _, _ = sample()
        # What the operator was promised, then whatever else the file sets.
        expected = {"appendonly": "yes", "appendfsync": "everysec", "daemonize": "no",
                    "logfile": ""}
        for name, value in expected.items():
            self.assertEqual(config_get(server.port, name), {name: value}, name)
        for no, name, args in active:
            if name in SET_BY_HARNESS:
                continue
            shown = config_get(server.port, name)
            if name not in shown:
                continue  # not a CONFIG GET parameter
            value, got = " ".join(args), shown[name]
            if memory_bytes(value) is not None and got.isdigit():
                value = str(memory_bytes(value))
            if name == "tcp-keepalive":  # QUIRK: CONFIG GET shows it as yes/no
                value = "yes" if int(value) else "no"
            self.assertEqual(got, value, f"line {no}: {name}")
        # appendonly yes: the AOF is in the working directory; logfile "": the log is on
        # standard output, which the harness collects.
        aof = os.path.join(server.dir, "disque.aof")
        wait_for(lambda: os.path.exists(aof), what=f"{aof} (files: {os.listdir(server.dir)})")
        self.assertIn("ready to accept connections", server.log())

    def test_sample_active_settings_are_the_packaged_ones(self):
        active, _, _ = sample()
        values = {name: args for _, name, args in active}
        self.assertEqual(values.get("bind"), ["127.0.0.1"], "bind: loopback only by default")
        self.assertEqual(values.get("port"), ["7711"])
        self.assertEqual(values.get("daemonize"), ["no"],
                         "systemd and Docker supervise the process")
        self.assertEqual(values.get("logfile"), [""], "standard output: journald and docker logs")
        self.assertEqual(values.get("appendonly"), ["yes"])
        self.assertEqual(values.get("appendfsync"), ["everysec"])
        # The working directory is the systemd unit's or the Docker image's; a daemonized
        # server's pidfile does not apply.
        self.assertNotIn("dir", values, "dir must stay commented out")
        self.assertNotIn("pidfile", values, "pidfile must stay commented out")
        self.assertEqual(len(values), len(active), "a directive is set twice in the sample")

    def test_every_directive_is_in_the_sample(self):
        active, examples, _ = sample()
        named = {name for _, name, _ in active} | {name for _, name, _ in examples}
        missing = [d for d in directives() if d not in named]
        self.assertEqual(missing, [],
                         "directives neither set nor shown as '# name value' in the sample")

    def test_sample_names_only_real_directives(self):
        active, examples, problems = sample()
        self.assertEqual(problems, [])
        known = set(directives())
        unknown = [f"line {no}: {name}" for no, name, _ in active + examples if name not in known]
        self.assertEqual(unknown, [], "not directives of the binary (a commented example, or an "
                                      "explanation starting with a lowercase word?)")

    def test_sample_examples_show_the_defaults(self):
        # The commented examples, uncommented, loaded by the real binary, must leave the
        # server exactly as it is without them. Directives whose default is unset (CONFIG
        # GET shows "") show a typical value instead and are left out, as is NO_DEFAULT.
        _, examples, _ = sample()
        defaults = self.start_server()
        lines = []
        for no, name, line in examples:
            if name in NO_DEFAULT or config_get(defaults.port, name).get(name) == "":
                continue
            lines.append((no, name, line))
        self.assertGreater(len(lines), 30, lines)
        path = os.path.join(self.tmp, "examples.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for _, _, line in lines))
        server = self.start_server(config=path)
        help_default = help_defaults()
        checked_by_text = 0
        for no, name, line in lines:
            if name in SET_BY_HARNESS:
                continue
            shown = config_get(defaults.port, name)
            if shown:
                self.assertEqual(config_get(server.port, name), shown, f"line {no}: '# {line}' is not the default")
            elif name in help_default and " " not in help_default[name] and help_default[name] != "none":
                # Not in CONFIG GET (threads, appendfilename, ...): the example's text
                # against --help's default, which the option table prints.
                value = line.split(None, 1)[1] if " " in line else ""
                self.assertEqual(value.strip('"'), help_default[name], f"line {no}: '# {line}' is not the default")
                checked_by_text += 1
        self.assertGreater(checked_by_text, 5, "the directives CONFIG GET does not show were not checked")


class ManPageTest(OpsTest):

    def test_man_page_renders_without_warnings(self):
        if shutil.which("groff") is None:
            self.skipTest("groff is not installed")
        result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", source_path(*MAN_PAGE)],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stderr), (0, ""))

    def test_man_page_has_its_sections(self):
        self.assertEqual([s for s in MAN_SECTIONS if s not in man_sections()], [])

    def test_man_page_shows_the_binary_version(self):
        lines = read_source(*MAN_PAGE).splitlines()
        th = next((line for line in lines if line.startswith(".TH ")), "")
        self.assertIn(version(), troff_plain(th), f".TH line: {th!r}")

    def test_man_page_documents_the_command_line_options(self):
        tags = tp_tags(man_sections().get("OPTIONS", []))
        documented = set()
        for tag in tags:
            documented.update(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", tag))
        wanted = [s for _, spellings in help_flags() if long_name(spellings) in COMMAND_LINE_OPTIONS
                  for s in spellings]
        for spelling in ("-h", "--help", "-v", "--version", "--check-aof", "--fix"):
            self.assertIn(spelling, wanted, f"--help does not list {spelling}")
        self.assertEqual([s for s in wanted if s not in documented], [],
                         f"options of --help with no .TP entry under OPTIONS (entries: {tags})")

    def test_every_directive_is_in_the_man_page(self):
        documented = man_directives()
        self.assertEqual([d for d in directives() if d not in documented], [],
                         "directives with no .TP entry under CONFIGURATION")

    def test_man_page_defaults_are_the_binary_defaults(self):
        # --help prints each directive's default from the option table. Values must be in
        # the man page as "Default: <value>"; phrases ("every interface", "none") are
        # worded freely.
        defaults = help_defaults()
        self.assertTrue(defaults, "--help shows no defaults")
        texts = man_directive_texts()
        wrong = []
        for name, value in defaults.items():
            if re.fullmatch(r"[A-Za-z ]+", value) and (" " in value or value == "none"):
                continue
            if not re.search(r"Default: " + re.escape(value) + r"(?![\w/-])", texts.get(name, "")):
                wrong.append(f"{name}: --help says {value!r}, the man page {texts.get(name)!r}")
        self.assertEqual(wrong, [])

    def test_man_page_names_only_real_directives(self):
        known = set(directives())
        documented = man_directives()
        self.assertEqual([d for d in documented if d not in known], [],
                         ".TP entries under CONFIGURATION that are not directives of the binary")
        self.assertEqual(len(documented), len(set(documented)), "a directive documented twice")


if __name__ == "__main__":
    unittest.main(verbosity=2)
