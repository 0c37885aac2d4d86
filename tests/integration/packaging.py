"""What `cmake --install` puts on a machine, checked as an operator would use it.

  --check man      the man page (packaging/cinchd.1) documents exactly the options of
                   `cinchd --help`, each under the same fate (honoured, ignored, refused), and
                   groff renders it without a warning
  --check install  `cmake --install` into a fresh prefix: cinchd, the REAPI plugin, the man
                   page, the systemd unit, the options file, LICENSE; the installed cinchd
                   started with the unit's ExecStart and the example options serves, and loads
                   the installed plugin; a second install keeps an operator's options file
  --check systemd  `systemd-analyze verify` accepts the installed unit, and `systemd-analyze
                   security` scores its hardening (skipped, saying so, where
                   systemd-analyze is missing)
  --check notify   the unit's Type=notify: with $NOTIFY_SOCKET (a path or an abstract name),
                   cinchd sends READY=1 once its port answers and STOPPING=1 on SIGTERM

Run by ctest (tests/integration/CMakeLists.txt) with --build-dir, or by hand:
  python3 tests/integration/packaging.py --server build/release/tools/cinchd --check man
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAN_PAGE = os.path.join(SOURCE, "packaging", "cinchd.1")
MAX_EXPOSURE = 2.0  # systemd-analyze security's score of the unit: "OK" is below 4.0


# ----------------------------------------------------------------------------- option lists


def options_of_tag(tag):
    """The options a tag names: '-p', '--port', '-o proxy_config'."""
    found = set()
    for m in re.finditer(r"-o\s+([a-z_]+)", tag):
        found.add("-o " + m.group(1))
    tag = re.sub(r"-o\s+[a-z_]+", "", tag)
    for m in re.finditer(r"(?<![\w-])--([a-z][a-z-]*)", tag):
        found.add("--" + m.group(1))
    for m in re.finditer(r"(?<![\w-])-([A-Za-z])(?![\w-])", tag):
        found.add("-" + m.group(1))
    return found


def help_options(help_text):
    """{fate: set of options} from `cinchd --help`: flags as -x/--long, -o keys as 'key'.

    Its layout (tools/cinchd_flags.cc PrintUsage): honoured flags, "-o settings of cinch:"
    (honoured keys), "Accepted ... ignored" (flags, then a "-o keys:" line and lists of
    keys), "Refused" (flags and "-o key" lines). A tag fills the first 32 columns; a line
    whose first 32 columns are blank continues the help of the line above."""
    fates = {"honoured": set(), "ignored": set(), "refused": set()}
    fate, keys, key_list = "honoured", False, False
    for line in help_text.splitlines():
        if line.startswith("-o settings of cinch"):
            keys = True
            continue
        if line.startswith("Accepted for memcached"):
            fate, keys = "ignored", False
            continue
        if line.startswith("Refused"):
            fate, keys, key_list = "refused", False, False
            continue
        if not line.startswith("  "):
            continue
        if fate == "ignored" and line.strip().startswith("-o keys:"):
            key_list = True
            continue
        if key_list:
            fates[fate].update(line.split())
            continue
        tag = line[:32]
        if not tag.strip():
            continue
        if keys:
            fates[fate].add(tag.strip().split("=")[0])
        else:
            fates[fate].update(options_of_tag(tag))
    return fates


def unroff(text):
    """Roff escapes and font changes out of a line: \\- to -, \\fB...\\fR dropped."""
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\(em", "-")


def man_options(roff):
    """{fate: set of options} from the man page: the tag line of each .TP paragraph in OPTIONS
    and EXTENDED OPTIONS (honoured), IGNORED OPTIONS and REFUSED OPTIONS, and the bold words of
    its "Ignored -o keys" subsection."""
    sections = {"OPTIONS": "honoured", "EXTENDED OPTIONS": "honoured", "IGNORED OPTIONS": "ignored",
                "REFUSED OPTIONS": "refused"}
    fates = {"honoured": set(), "ignored": set(), "refused": set()}
    section, subsection, tag_next = None, None, False
    for line in roff.splitlines():
        if line.startswith(".SH"):
            section, subsection = line[3:].strip().strip('"'), None
            continue
        if line.startswith(".SS"):
            subsection = unroff(line[3:].strip().strip('"'))
            continue
        fate = sections.get(section)
        if fate is None:
            continue
        if subsection == "Ignored -o keys":
            fates[fate].update(re.findall(r"\\fB([a-z_]+)\\fR", line))
            continue
        if line.startswith(".TP"):
            tag_next = True
            continue
        if not tag_next:
            continue
        tag_next = False
        if section == "EXTENDED OPTIONS":
            m = re.match(r"\.BR? +([a-z_]+)", line)
            if m:
                fates[fate].add(m.group(1))
            continue
        # .BR alternates bold and roman: "\-p ", " \-\-port =\fInum\fR" reads -p, --port.
        fates[fate].update(options_of_tag(unroff(line).replace('"', " ")))
    return fates


def check_man(args, checker):
    help_text = subprocess.run([args.server, "--help"], capture_output=True, text=True,
                               timeout=10).stdout
    from_help = help_options(help_text)
    with open(MAN_PAGE) as f:
        from_man = man_options(f.read())
    for fate in ("honoured", "ignored", "refused"):
        checker.check(len(from_help[fate]) > 0, "--help lists %s options" % fate)
        missing = sorted(from_help[fate] - from_man[fate])
        extra = sorted(from_man[fate] - from_help[fate])
        checker.check(not missing, "every %s option of --help is in cinchd.1" % fate,
                      "not in the man page's %s options: %s" % (fate, " ".join(missing)))
        checker.check(not extra, "every %s option of cinchd.1 is in --help" % fate,
                      "not in --help's %s options: %s" % (fate, " ".join(extra)))
    checker.note("%d honoured, %d ignored, %d refused options in both" %
                 tuple(len(from_help[f]) for f in ("honoured", "ignored", "refused")))
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-ww", "-z", MAN_PAGE], capture_output=True,
                           text=True, timeout=30)
        checker.check(r.returncode == 0 and not r.stderr.strip(),
                      "groff renders cinchd.1 without a warning", r.stderr)
    else:
        checker.skip("groff rendering", "groff is not installed")
    return checker.finish()


# ----------------------------------------------------------------------------- installing


def cmake_install(args, prefix):
    """`cmake --install BUILD --prefix PREFIX`; returns its output, raises on failure."""
    r = subprocess.run([args.cmake, "--install", args.build_dir, "--prefix", prefix],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("cmake --install failed:\n%s%s" % (r.stdout, r.stderr))
    return r.stdout


def unit_directives(path):
    """The unit's directives: name -> list of values, in order."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                name, value = line.split("=", 1)
                out.setdefault(name, []).append(value)
    return out


def environment_file(path):
    """An EnvironmentFile's assignments, read as systemd does for simple quoted lines."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";")) and "=" in line:
                name, value = line.split("=", 1)
                words = shlex.split(value)
                env[name.strip()] = " ".join(words)
    return env


def exec_start_argv(unit):
    """ExecStart's argv with $VAR expanded from the unit's EnvironmentFile, as systemd does for
    an unquoted $VAR (split on whitespace)."""
    d = unit_directives(unit)
    env = {}
    for path in d.get("EnvironmentFile", []):
        optional = path.startswith("-")
        path = path.lstrip("-")
        if os.path.exists(path):
            env.update(environment_file(path))
        elif not optional:
            raise RuntimeError("EnvironmentFile %s is missing" % path)
    argv = []
    for word in shlex.split(d["ExecStart"][0]):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        argv += env.get(m.group(1), "").split() if m else [word]
    return argv


class UnitServer(harness.Server):
    """The unit's command line (unit_argv), then a free port and loopback (the example's own -p
    and -l come first and are overridden, as flags given later are)."""

    unit_argv = ()

    def argv(self, port):
        argv = list(self.unit_argv) + ["-p", str(port), "-l", "127.0.0.1"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # the unit's DynamicUser= does this under systemd
        return argv + self.args


class InstalledServer(harness.FrontEndServer, UnitServer):
    """The unit's cinchd with the HTTP cache on a port of its own: ready once cinchd logs it,
    started again on other ports if one was taken meanwhile."""

    front_ends = ("http",)

    def __init__(self, argv):
        super().__init__(argv[0])
        self.unit_argv = argv


def check_install(args, checker):
    with tempfile.TemporaryDirectory(prefix="cinch-install-") as prefix:
        os.chmod(prefix, 0o755)  # the installed cinchd runs as nobody
        cmake_install(args, prefix)
        files = {
            "bin/cinchd": True, "lib/cinch/cinch_reapi.so": False,
            "share/man/man1/cinchd.1": False, "lib/systemd/system/cinchd.service": False,
            "etc/default/cinchd": False, "share/doc/cinch/examples/cinchd.default": False,
            "share/doc/cinch/LICENSE": False, "share/doc/cinch/README.md": False,
        }
        for path, executable in files.items():
            full = os.path.join(prefix, path)
            ok = os.path.isfile(full) and (not executable or os.access(full, os.X_OK))
            checker.check(ok, "installed: %s" % path)
        with open(os.path.join(prefix, "share/doc/cinch/LICENSE")) as f:
            checker.check("Apache License" in f.read(2000), "LICENSE is the Apache License")

        unit = os.path.join(prefix, "lib/systemd/system/cinchd.service")
        d = unit_directives(unit)
        checker.equal(d.get("EnvironmentFile"), ["-%s/etc/default/cinchd" % prefix],
                      "the unit reads the installed options file")
        argv = exec_start_argv(unit)
        checker.equal(argv[0], os.path.join(prefix, "bin/cinchd"),
                      "ExecStart runs the installed cinchd")
        checker.check("-m" in argv and "-d" not in argv,
                      "ExecStart's options come from the options file, without -d", str(argv))
        version = subprocess.run([argv[0], "--version"], capture_output=True, text=True,
                                 timeout=10)
        checker.check(version.returncode == 0 and version.stdout.startswith("cinchd "),
                      "installed cinchd --version", version.stdout + version.stderr)

        # As the service would run it, plus the HTTP cache with its action-result check,
        # which needs the plugin: it must come from the installed tree.
        with InstalledServer(argv) as server:
            with server.conn() as c:
                checker.equal(c.set(b"k", b"v"), b"STORED", "installed cinchd stores")
                checker.equal(c.get(b"k"), b"v", "installed cinchd serves")
                settings = c.stats(b"settings")
            # -c, not -m: the limit in force may follow the machine's memory below -m.
            checker.equal(settings.get("maxconns"), "4096",
                          "-c of the example options file is in force")
            with open("/proc/%d/maps" % server.pid) as f:
                maps = f.read()
            plugin = os.path.join(prefix, "lib/cinch/cinch_reapi.so")
            checker.check(plugin in maps, "the installed cinchd loads the installed plugin",
                          "mapped: %s" % sorted(set(re.findall(r"\S*cinch_reapi\.so", maps))))

        # An operator's options file survives a reinstall.
        options = os.path.join(prefix, "etc/default/cinchd")
        with open(options, "w") as f:
            f.write('CINCHD_OPTS="-m 32"\n')
        out = cmake_install(args, prefix)
        with open(options) as f:
            checker.equal(f.read(), 'CINCHD_OPTS="-m 32"\n', "a reinstall keeps the options file")
        checker.check("Keeping" in out, "the reinstall says it kept the options file", out)
    return checker.finish()


def check_unit(args, checker):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("SKIPPED: systemd-analyze is not installed (Debian package systemd); the unit "
              "is not verified", flush=True)
        return harness.SKIP
    with tempfile.TemporaryDirectory(prefix="cinch-unit-") as prefix:
        cmake_install(args, prefix)
        unit = os.path.join(prefix, "lib/systemd/system/cinchd.service")
        # Documentation=man:cinchd(1) is looked up with man(1): in the installed tree.
        env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man") + ":")

        def verify(path):
            """(accepted, output): exit 0 and no line about the unit (verify also reports
            other units of the machine, by their names)."""
            r = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                               timeout=60, env=env)
            out = (r.stdout + r.stderr).strip()
            own = [line for line in out.splitlines() if "cinchd" in line]
            return r.returncode == 0 and not own, "exit %d:\n%s" % (r.returncode, out)

        accepted, out = verify(unit)
        checker.check(accepted, "systemd-analyze verify accepts the unit", out)
        if args.verbose:
            print(out)
        # Its hardening, as systemd scores it (0 = locked down, 10 = none; cinchd.service:
        # 1.5, the exposure left being the network itself, its own cgroup and /proc files
        # the memory governor reads).
        r = subprocess.run([analyze, "security", "--offline=yes", unit], capture_output=True,
                           text=True, timeout=60, env=env)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
        if m is None:
            checker.skip("the unit's exposure level",
                         "systemd-analyze security --offline is not supported here")
        else:
            checker.check(float(m.group(1)) <= MAX_EXPOSURE,
                          "systemd-analyze security: exposure %s <= %.1f" %
                          (m.group(1), MAX_EXPOSURE), r.stdout)
        # The same judgement rejects a unit with a bad directive: the check can fail.
        os.mkdir(os.path.join(prefix, "broken"))
        broken = os.path.join(prefix, "broken", "cinchd.service")
        with open(unit) as f, open(broken, "w") as g:
            g.write(f.read().replace("ProtectSystem=strict", "ProtectSystem=sometimes"))
        accepted, out = verify(broken)
        checker.check(not accepted and "protect system" in out.lower(),
                      "systemd-analyze verify rejects ProtectSystem=sometimes", out)
    return checker.finish()


class NotifiedServer(harness.Server):
    """cinchd under a stand-in for systemd's Type=notify: $NOTIFY_SOCKET names a datagram
    socket of the test's; ready means READY=1 arrived (not that the port answers)."""

    def __init__(self, path, args, notify):
        super().__init__(path, args)
        self.notify = notify
        self.listening_when_ready = None

    def _wait_ready(self):
        self.notify.settimeout(0.1)
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                message = self.notify.recv(4096)
            except socket.timeout:
                continue
            if b"READY=1" in message.split(b"\n"):
                self.listening_when_ready = harness.can_connect(self.port)
                return True
        return False


def check_notify(args, checker):
    with tempfile.TemporaryDirectory(prefix="cinch-notify-") as directory:
        for name, address in (("a path", os.path.join(directory, "notify")),
                              ("the abstract namespace", "@cinch-notify-%d" % os.getpid())):
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind("\0" + address[1:] if address.startswith("@") else address)
            os.environ["NOTIFY_SOCKET"] = address
            try:
                server = NotifiedServer(args.server, ["-m", "32", "-t", "1"], notify).start()
            except harness.ServerError as e:
                checker.check(False, "cinchd sends READY=1 to %s" % name, str(e))
                continue
            finally:
                del os.environ["NOTIFY_SOCKET"]
            checker.check(True, "cinchd sends READY=1 to %s" % name)
            checker.check(server.listening_when_ready, "the port answers when READY=1 arrives")
            server.proc.send_signal(signal.SIGTERM)
            notify.settimeout(10)
            try:
                stopping = notify.recv(4096)
            except socket.timeout:
                stopping = b"(nothing within 10 s)"
            checker.equal(stopping, b"STOPPING=1", "SIGTERM: STOPPING=1 to %s" % name)
            checker.equal(server.stop(), 0, "then cinchd exits 0")
            notify.close()
    return checker.finish()


def main(args):
    checker = harness.Checker(args.verbose)
    harness.skip_unless_cinch(args, "packaging")
    if args.check == "man":
        return check_man(args, checker)
    if args.check == "notify":
        return check_notify(args, checker)
    if not args.build_dir:
        print("FAIL: --check %s needs --build-dir" % args.check)
        return 1
    return check_install(args, checker) if args.check == "install" else check_unit(args, checker)


if __name__ == "__main__":
    def extra(p):
        p.add_argument("--check", choices=("man", "install", "systemd", "notify"), required=True)
        p.add_argument("--build-dir", help="the build tree to `cmake --install` from")
        p.add_argument("--cmake", default="cmake")
    harness.run(main, harness.parse_args(__doc__.splitlines()[0], extra), time_limit=60)
