"""Deployment (issue 24): the man pages in step with every tool's --help, and the Debian
package built by CPack, installed on this machine with dpkg, set up with vigil-setup, started
from the installed unit's command line as the vigil user, used for a bumped request, reloaded
with the unit's ExecReload, stopped, reinstalled (the CA and an edited conffile kept) and
purged. The package part needs root and a machine without a vigil user of its own."""
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN_DIR, Origin, Pki, curl, free_port, make_workdir, remove_workdir, run
from test_cli import commands

BUILD = os.path.normpath(os.path.join(BIN_DIR, ".."))
MAN = os.path.join(BUILD, "gateway", "deploy", "man")
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOOLS = {"vigil": 8, "vigil-ca": 8, "vigil-rules": 8, "vigil-audit": 8, "vigil-console": 8}


def roff_text(path):
    with open(path) as f:
        return f.read().replace("\\-", "-").replace("\\e", "\\")


class ManPageTest(unittest.TestCase):
    def test_every_command_and_option_of_help_is_in_the_page(self):
        for tool, section in TOOLS.items():
            page = roff_text(os.path.join(MAN, "man%d" % section, "%s.%d" % (tool, section)))
            binary = os.path.join(BIN_DIR, tool)
            for path in commands(binary):
                if path:
                    self.assertIn(".SS " + " ".join([tool] + path) + "\n", page, (tool, path))
                out = subprocess.run([binary] + path + ["--help"], capture_output=True, text=True, timeout=10).stdout
                for option in set(re.findall(r"^\s+(?:-\w,)?(--[a-z][a-z0-9-]*)", out, re.M)) - {"--help"}:
                    self.assertIn(option, page, "%s %s: %s" % (tool, " ".join(path), option))

    def test_vigil_toml_5_lists_every_key_of_the_installed_file(self):
        page = roff_text(os.path.join(MAN, "man5", "vigil.toml.5"))
        section = None
        with open(os.path.join(ROOT, "gateway", "deploy", "vigil.toml.in")) as f:
            for line in f:
                m = re.match(r"^\[([a-z_]+)\]", line)
                if m:
                    section = m.group(1)
                    self.assertIn(".SH [%s]\n" % section, page)
                k = re.match(r"^(?:#\s*)?([a-z0-9_]+) = ", line)
                if k:
                    self.assertRegex(page, r"\\fB%s\\fR" % k.group(1), "%s.%s" % (section, k.group(1)))

    def test_pages_render_without_warnings(self):
        for page in [os.path.join(MAN, "man5", "vigil.toml.5")] + [
                os.path.join(MAN, "man8", t + ".8") for t in TOOLS]:
            p = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", page], capture_output=True, text=True)
            self.assertEqual((p.returncode, p.stderr), (0, ""), page)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def owner(path):
    return pwd.getpwuid(os.stat(path).st_uid).pw_name


def unit_value(unit_text, key):
    m = re.search(r"^%s=(.*)$" % key, unit_text, re.M)
    return m.group(1) if m else None


def why_not_package():
    if os.geteuid() != 0:
        return "installing a package needs root"
    for tool in ("dpkg", "cpack", "systemd-analyze", "setpriv"):
        if not shutil.which(tool):
            return tool + " is installed by `make deps`"
    try:
        pwd.getpwnam("vigil")
        return "this machine already has a vigil user: not touching it"
    except KeyError:
        pass
    if os.path.exists("/var/lib/vigil") or os.path.exists("/etc/vigil"):
        return "this machine already has /var/lib/vigil or /etc/vigil: not touching them"
    return None


@unittest.skipIf(why_not_package(), why_not_package())
class DebPackageTest(unittest.TestCase):
    """Ordered steps (test_1 ... test_5) on one installation, purged at the end."""

    @classmethod
    def setUpClass(cls):
        cls.dir = make_workdir()
        os.chmod(cls.dir, 0o755)  # the vigil user reads the test's hosts file and CA
        out = os.path.join(cls.dir, "packages")
        p = subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError("cpack failed: " + p.stdout[-3000:] + p.stderr[-3000:])
        cls.deb = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".deb")][0]
        cls.install = subprocess.run(["dpkg", "-i", cls.deb], capture_output=True, text=True, timeout=300)
        cls.pki = Pki(cls.dir)
        cls.origin = Origin("good", *cls.pki.leaf("good", "good.test"))
        for f in os.listdir(cls.dir):
            p = os.path.join(cls.dir, f)
            if os.path.isfile(p):
                os.chmod(p, 0o644)
        cls.hosts = os.path.join(cls.dir, "hosts")
        with open(cls.hosts, "w") as f:
            f.write("127.0.0.1 *.test\n")
        os.chmod(cls.hosts, 0o644)

    @classmethod
    def tearDownClass(cls):
        cls.origin.close()
        purge = subprocess.run(["dpkg", "--purge", "vigil"], capture_output=True, text=True, timeout=300)
        gone = not os.path.exists("/usr/bin/vigil")
        kept = os.path.exists("/var/lib/vigil/ca/root.pem")
        # What the package leaves by design (the state folder, the user) goes with the test.
        shutil.rmtree("/var/lib/vigil", ignore_errors=True)
        shutil.rmtree("/etc/vigil", ignore_errors=True)
        subprocess.run(["userdel", "vigil"], capture_output=True)
        subprocess.run(["groupdel", "vigil"], capture_output=True)
        remove_workdir(cls.dir)
        assert purge.returncode == 0, purge.stdout + purge.stderr
        assert gone, "dpkg --purge left /usr/bin/vigil"
        assert kept, "dpkg --purge removed the CA"
        assert "/var/lib/vigil (CA, rules, audit log) was kept" in purge.stdout, purge.stdout

    def test_1_installed_layout_user_and_unit(self):
        self.assertEqual(self.install.returncode, 0, self.install.stdout + self.install.stderr)
        self.assertIn("no CA yet. Run: vigil-setup", self.install.stdout)
        deps = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True, text=True).stdout
        for lib in ("libssl3", "libre2-", "libsqlite3-0", "libhyperscan5", "libsystemd0"):
            self.assertIn(lib, deps)
        for path in ("/usr/bin/vigil", "/usr/bin/vigil-ca", "/usr/bin/vigil-rules", "/usr/bin/vigil-audit",
                     "/usr/bin/vigil-setup", "/usr/lib/systemd/system/vigil.service", "/etc/logrotate.d/vigil",
                     "/usr/share/vigil/rules/default.json", "/usr/share/doc/vigil/deploy.md",
                     "/usr/share/doc/vigil/monitoring/alerts.yml"):
            self.assertTrue(os.path.exists(path), path)
        user = pwd.getpwnam("vigil")
        self.assertEqual((user.pw_dir, user.pw_shell), ("/var/lib/vigil", "/usr/sbin/nologin"))
        for d in ("/var/lib/vigil", "/var/cache/vigil", "/var/log/vigil"):
            self.assertEqual((owner(d), mode(d)), ("vigil", 0o750), d)
        self.assertEqual(mode("/etc/vigil/vigil.toml"), 0o640)
        conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "vigil"], capture_output=True,
                                   text=True).stdout
        self.assertIn("/etc/vigil/vigil.toml", conffiles)
        self.assertIn("/etc/logrotate.d/vigil", conffiles)
        for page in ("vigil", "vigil-ca", "vigil-rules", "vigil-audit", "vigil.toml"):
            self.assertEqual(subprocess.run(["man", "-w", page], capture_output=True).returncode, 0, page)
        p = subprocess.run(["systemd-analyze", "verify", "/usr/lib/systemd/system/vigil.service"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", "/usr/lib/systemd/system/vigil.service"],
                           capture_output=True, text=True, timeout=60)
        score = re.search(r"Overall exposure level for vigil.service: ([\d.]+)", p.stdout)
        self.assertIsNotNone(score, p.stdout + p.stderr)
        self.assertLessEqual(float(score.group(1)), 2.0, p.stdout)  # docs/deploy.md names the score
        # The installed configuration is valid as shipped (no CA yet: that is what it says).
        p = subprocess.run(["/usr/bin/vigil", "--config", "/etc/vigil/vigil.toml", "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("/var/lib/vigil/ca", p.stderr)

    def test_2_setup_makes_the_ca_and_rules_once(self):
        p = subprocess.run(["vigil-setup", "--org", "Deb Test"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ca = "/var/lib/vigil/ca"
        self.assertEqual((owner(ca), mode(ca)), ("vigil", 0o700))
        for key in ("issuing.key", "root.key"):
            self.assertEqual((owner(os.path.join(ca, key)), mode(os.path.join(ca, key))), ("vigil", 0o600), key)
        self.assertEqual(owner("/var/lib/vigil/rules.db"), "vigil")
        before = sha256(os.path.join(ca, "issuing.key")), sha256("/var/lib/vigil/rules.db")
        again = subprocess.run(["vigil-setup", "--org", "Someone Else"], capture_output=True, text=True, timeout=120)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("already holds a CA: kept as it is", again.stdout)
        self.assertIn("rules.db already exists: kept as it is", again.stdout)
        self.assertEqual((sha256(os.path.join(ca, "issuing.key")), sha256("/var/lib/vigil/rules.db")), before)
        self.assertEqual(subprocess.run(["vigil-setup"], capture_output=True).returncode, 2)

    def test_3_the_unit_command_line_as_vigil_serves_reloads_and_stops(self):
        with open("/usr/lib/systemd/system/vigil.service") as f:
            unit = f.read()
        self.assertEqual(unit_value(unit, "User"), "vigil")
        self.assertEqual(unit_value(unit, "Type"), "notify")
        marker = time.time()
        run_dir = tempfile.mkdtemp(prefix="vigil-deb-run-")
        os.chmod(run_dir, 0o777)
        notify_path = os.path.join(run_dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        os.chmod(notify_path, 0o777)
        sock.settimeout(20)
        ready = os.path.join(run_dir, "ready.json")
        # The unit's ExecStart as written, as its User with NoNewPrivileges; then only what a
        # loopback test needs: free ports, the test origin's name and CA, SIGHUP-only reloads.
        cmd = shlex.split(unit_value(unit, "ExecStart")) + [
            "--listen", "127.0.0.1:0", "--set", 'admin.listen="127.0.0.1:0"', "--ready-file", ready,
            "--hosts-file", self.hosts, "--extra-ca", self.pki.ca_pem,
            "--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%d]" % self.origin.port, "--set", "rules.reload_interval=3600"]
        env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "10000000"}
        log = open(os.path.join(run_dir, "vigil.log"), "w")
        proc = subprocess.Popen(["setpriv", "--reuid=vigil", "--regid=vigil", "--init-groups", "--no-new-privs"] + cmd,
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd="/")
        try:
            self.assertIn("READY=1", sock.recv(4096).decode().split("\n"))
            with open(ready) as f:
                port = int(json.load(f)["listen"].rsplit(":", 1)[1])
            with open("/proc/%d/status" % proc.pid) as f:
                uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
            self.assertEqual(int(uid), pwd.getpwnam("vigil").pw_uid)
            url = "https://good.test:%d/hello" % self.origin.port
            proxy = "http://127.0.0.1:%d" % port
            code, status, _, body, err = curl("-x", proxy, "--cacert", "/var/lib/vigil/ca/root.pem", url)
            self.assertEqual((code, status, body), (0, 200, b"hello from good"), err)
            # A rule added by the administrator, loaded by the unit's ExecReload.
            for args in (["add", "category", "deb-test"], ["add", "host", "good.test", "--category", "deb-test"],
                         ["add", "policy", "block-deb-test", "--action", "block", "--category", "deb-test"]):
                run(["setpriv", "--reuid=vigil", "--regid=vigil", "--init-groups", "vigil-rules", "--db",
                     "/var/lib/vigil/rules.db"] + args)
            self.assertEqual(curl("-x", proxy, "--cacert", "/var/lib/vigil/ca/root.pem", url)[1], 200)
            reload = unit_value(unit, "ExecReload").replace("$MAINPID", str(proc.pid))
            subprocess.run(shlex.split(reload), check=True)
            deadline, status = time.time() + 10, 200
            while status != 403 and time.time() < deadline:
                status = curl("-x", proxy, "--cacert", "/var/lib/vigil/ca/root.pem", url)[1]
                time.sleep(0.1)
            self.assertEqual(status, 403)
            proc.send_signal(signal.SIGTERM)
            msgs = []
            while not any("STOPPING=1" in m for m in msgs):
                msgs.append(sock.recv(4096).decode())
            self.assertEqual(proc.wait(timeout=60), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            sock.close()
        with open(os.path.join(run_dir, "vigil.log")) as f:
            text = f.read()
        shutil.rmtree(run_dir, ignore_errors=True)
        self.assertIn("received SIGHUP", text)
        self.assertIn("vigil stopped", text)
        audit = subprocess.run(["vigil-audit", "--db", "/var/lib/vigil/audit.db", "query", "--json"],
                               capture_output=True, text=True, timeout=30)
        records = json.loads(audit.stdout)
        self.assertTrue(any(r.get("action") == "block" and "good.test" in r.get("url", "") for r in records), records)
        # Nothing written by the vigil user outside its folders (and the test's run folder, gone).
        found = subprocess.run(["find", "/etc", "/usr", "/var", "/opt", "/srv", "/home", "/root", "/tmp", "-xdev",
                                "-user", "vigil", "-newermt", "@%d" % int(marker)],
                               capture_output=True, text=True).stdout.split()
        allowed = ("/var/lib/vigil", "/var/cache/vigil", "/var/log/vigil")
        self.assertEqual([f for f in found if not f.startswith(allowed)], [])

    def test_4_reinstall_keeps_the_ca_and_an_edited_config(self):
        key = sha256("/var/lib/vigil/ca/issuing.key")
        with open("/etc/vigil/vigil.toml", "a") as f:
            f.write("# edited by the administrator\n")
        edited = sha256("/etc/vigil/vigil.toml")
        p = subprocess.run(["dpkg", "-i", self.deb], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(sha256("/etc/vigil/vigil.toml"), edited)
        self.assertEqual(sha256("/var/lib/vigil/ca/issuing.key"), key)
        self.assertNotIn("no CA yet", p.stdout)

    def test_5_the_readmes_deploy_steps_edit_and_check_the_installed_config(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        block = readme.split("## Deploy on a Debian server", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
        steps = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
        self.assertLessEqual(len(steps), 12)
        edit = [s for s in steps if s.startswith("sudo sed ")][0]
        subprocess.run(["sh", "-c", edit[len("sudo "):]], check=True)
        with open("/etc/vigil/vigil.toml") as f:
            text = f.read()
        self.assertIn('\nlisten = "0.0.0.0:3128"', text)
        self.assertIn('\nallow_clients = ["10.0.0.0/8", "127.0.0.0/8"]', text)
        check = [s for s in steps if "--check-config" in s][0]
        p = subprocess.run(shlex.split(check[len("sudo "):]), capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "vigil: configuration OK"), p.stderr)


if __name__ == "__main__":
    unittest.main()
