"""Running as a service (issue 24): JSON logs to a file rotated by the installed logrotate
snippet, systemd's notify protocol (readiness, watchdog, stopping) on a real datagram socket,
the PAC file evaluated by Node and used by Chromium, and /metrics checked by promtool, with the
alert rules and the Grafana dashboard checked against what the gateway really exports."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import (Origin, Pki, Vigil, VIGIL_CA, curl, make_workdir, remove_workdir, run)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MONITORING = os.path.join(ROOT, "docs", "monitoring")
RULES = os.path.join(os.path.dirname(VIGIL_CA), "vigil-rules")
CHROMIUM = shutil.which("chromium")
W = {}


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "Service test"])
    W["pki"] = Pki(d)
    W["good"] = Origin("good", *W["pki"].leaf("good", "good.test"))
    W["plain"] = Origin("plain")
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["rules"] = os.path.join(d, "rules.db")
    run([RULES, "--db", W["rules"], "init"])


def tearDownModule():
    for k in ("good", "plain"):
        if k in W:
            W[k].close()
    remove_workdir(W["dir"])


def start(*extra, env=None):
    """A gateway reaching the test origins, with `extra` flags; `env` is added to its environment."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
            "--rules", W["rules"], "--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%d]" % W["good"].port] + list(extra))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def bumped_get(v, path="/hello"):
    return curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                "https://good.test:%d%s" % (W["good"].port, path))


def admin_get(v, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (v.admin_port, path), timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def read(path):
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


class LogTest(unittest.TestCase):
    def test_json_lines_to_a_file(self):
        log = os.path.join(W["dir"], "json.log")
        v = start("--set", "log.format=json", "--set", 'log.file="%s"' % log)
        try:
            self.assertEqual(bumped_get(v)[:2], (0, 200))
        finally:
            code, _ = v.stop()
        self.assertEqual(code, 0)
        lines = read(log).splitlines()
        self.assertGreater(len(lines), 3)
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        for r in records:
            self.assertLessEqual({"time", "level", "msg"}, set(r), r)
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(r["level"], ("debug", "info", "warn", "error"))
        self.assertTrue(any(r["msg"].startswith("vigil listening on") for r in records))
        self.assertTrue(any(r["msg"] == "vigil stopped" for r in records))
        # Nothing went to stderr but what came before the file was opened (nothing here).
        self.assertNotIn("vigil listening", read(v.log_path))

    def test_unwritable_log_file_is_one_clear_line(self):
        p = subprocess.run([os.path.join(os.path.dirname(VIGIL_CA), "vigil"), "--ca-dir", W["ca"], "--listen",
                            "127.0.0.1:0", "--set", 'admin.listen=""', "--set",
                            'log.file="/nonexistent-dir/vigil.log"', "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), "vigil: log.file /nonexistent-dir/vigil.log: cannot be opened for appending")

    def test_logrotate_with_the_installed_snippet_loses_nothing(self):
        logs = os.path.join(W["dir"], "rotated")
        os.makedirs(logs)
        v = start("--set", 'log.file="%s/vigil.log"' % logs, "--set", 'audit.jsonl="%s/audit.jsonl"' % logs,
                  "--audit", os.path.join(logs, "audit.db"))
        try:
            before = [bumped_get(v, "/hello?n=%d" % i) for i in range(3)]
            self.assertTrue(all(r[:2] == (0, 200) for r in before))
            wait_for(lambda: read(os.path.join(logs, "audit.jsonl")).count("/hello?n=") == 3, what="3 records")
            # The packaged snippet, for this folder; only the owner and the signal's route differ
            # (no systemd here: the postrotate signals this process as systemctl kill would).
            with open(os.path.join(ROOT, "gateway", "deploy", "logrotate.in")) as f:
                conf = f.read().replace("@VIGIL_LOGDIR@", logs)
            user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
            group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
            conf = conf.replace("create 0640 vigil vigil", "create 0640 %s %s" % (user, group))
            conf = re.sub(r"systemctl kill [^\n]*", "kill -USR1 %d" % v.proc.pid, conf)
            self.assertIn("kill -USR1", conf)
            with open(os.path.join(logs, "logrotate.conf"), "w") as f:
                f.write(conf)
            p = subprocess.run(["logrotate", "-s", os.path.join(logs, "state"), "-f",
                                os.path.join(logs, "logrotate.conf")], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.exists(os.path.join(logs, "vigil.log.1")))
            self.assertTrue(os.path.exists(os.path.join(logs, "audit.jsonl.1")))
            wait_for(lambda: "log file reopened" in read(os.path.join(logs, "vigil.log")), what="the reopen")
            after = [bumped_get(v, "/hello?m=%d" % i) for i in range(3)]
            self.assertTrue(all(r[:2] == (0, 200) for r in after))
            wait_for(lambda: read(os.path.join(logs, "audit.jsonl")).count("/hello?m=") == 3, what="3 more records")
        finally:
            code, _ = v.stop()
        self.assertEqual(code, 0)
        old, new = read(os.path.join(logs, "audit.jsonl.1")), read(os.path.join(logs, "audit.jsonl"))
        # Every record once, in the file of its time: none lost, none doubled by the rotation.
        for i in range(3):
            self.assertEqual((old + new).count("/hello?n=%d\"" % i), 1)
            self.assertEqual(new.count("/hello?m=%d\"" % i), 1)
        self.assertNotIn("/hello?m=", old)
        self.assertIn("vigil listening on", read(os.path.join(logs, "vigil.log.1")))
        self.assertNotIn("vigil listening on", read(os.path.join(logs, "vigil.log")))
        self.assertIn("vigil stopped", read(os.path.join(logs, "vigil.log")))


class ConfigReloadTest(unittest.TestCase):
    def test_sighup_applies_log_keys_and_names_the_rest(self):
        conf = os.path.join(W["dir"], "reload.toml")
        with open(conf, "w") as f:
            f.write('[log]\nformat = "text"\n[proxy]\nshutdown_grace = 30\n')
        v = start("--config", conf)
        try:
            with open(conf, "w") as f:
                f.write('[log]\nformat = "json"\n[proxy]\nshutdown_grace = 5\n')
            v.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "re-read: applied log.format" in read(v.log_path), what="the reload")
            wait_for(lambda: "shutdown_grace changed and take effect at the next restart" in read(v.log_path),
                     what="the pending key")
            self.assertEqual(bumped_get(v)[:2], (0, 200))
            with open(conf, "w") as f:
                f.write('[log]\nformat = "json"\n[proxy]\nshutdown_grace = "soon"\n')
            v.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "not applied, the running configuration stays" in read(v.log_path), what="the refusal")
            self.assertEqual(bumped_get(v)[:2], (0, 200))
        finally:
            code, _ = v.stop()
        self.assertEqual(code, 0)
        lines = read(v.log_path).splitlines()
        first_json = next(i for i, line in enumerate(lines) if line.startswith("{"))
        self.assertIn("applied log.format", json.loads(lines[first_json])["msg"])
        for line in lines[first_json:]:
            json.loads(line)  # from the reload on, one JSON object per line
        refusal = [json.loads(line)["msg"] for line in lines[first_json:] if "not applied" in line][0]
        self.assertIn("proxy.shutdown_grace", refusal)


class NotifyTest(unittest.TestCase):
    """systemd's side of Type=notify, played by a real AF_UNIX datagram socket."""

    def test_ready_once_accepting_then_watchdog_pings_then_stopping(self):
        path = os.path.join(tempfile.mkdtemp(prefix="vigil-notify-"), "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(15)
        v = start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        try:
            first = sock.recv(4096).decode()
            self.assertIn("READY=1", first.split("\n"))
            self.assertRegex(first, r"STATUS=serving on 127\.0\.0\.1:\d+, ruleset version \d+")
            # Ready means accepting: a request right now is served.
            self.assertEqual(bumped_get(v)[:2], (0, 200))
            pings, deadline = 0, time.time() + 1.5
            while time.time() < deadline:
                msg = sock.recv(4096).decode()
                pings += msg == "WATCHDOG=1"
            # Every 100 ms (a quarter of WatchdogSec) while healthy: about 15 in 1.5 s.
            self.assertGreaterEqual(pings, 8)
            v.proc.send_signal(signal.SIGTERM)
            msgs = []
            while not any("STOPPING=1" in m for m in msgs):
                msgs.append(sock.recv(4096).decode())
            self.assertIn("STATUS=draining", [m for m in msgs if "STOPPING=1" in m][0])
        finally:
            code, _ = v.stop()
            sock.close()
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        self.assertEqual(code, 0)
        self.assertIn("systemd watchdog: pinging every 100 ms", read(v.log_path))

    def test_the_watchdog_stops_while_the_audit_writer_is_stuck_and_resumes(self):
        import sqlite3
        path = os.path.join(tempfile.mkdtemp(prefix="vigil-notify-"), "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(15)
        audit = os.path.join(W["dir"], "watchdog-audit.db")
        v = start("--audit", audit, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})

        def pings_within(seconds):
            n, deadline = 0, time.time() + seconds
            sock.settimeout(0.05)
            while time.time() < deadline:
                try:
                    n += sock.recv(4096).decode() == "WATCHDOG=1"
                except socket.timeout:
                    pass
            sock.settimeout(15)
            return n

        try:
            self.assertIn("READY=1", sock.recv(4096).decode())
            # Another process holds the audit log's write lock: the writer waits on it (up to
            # its 5 s busy timeout) holding the new record: stuck, not failing.
            db = sqlite3.connect(audit, isolation_level=None, timeout=10)
            db.execute("BEGIN EXCLUSIVE")
            self.assertEqual(bumped_get(v)[:2], (0, 200))
            wait_for(lambda: "systemd watchdog: not pinging: the audit writer holds" in read(v.log_path), 5,
                     "the watchdog to notice")
            pings_within(0.3)  # those already on their way
            self.assertEqual(pings_within(1.0), 0)
            db.execute("COMMIT")
            db.close()
            wait_for(lambda: "systemd watchdog: healthy again, pings resumed" in read(v.log_path), 5, "the recovery")
            self.assertGreater(pings_within(1.0), 0)
        finally:
            code, _ = v.stop()
            sock.close()
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        self.assertEqual(code, 0)

    def test_without_systemd_nothing_is_sent_and_nothing_fails(self):
        v = start()
        try:
            self.assertEqual(bumped_get(v)[:2], (0, 200))
        finally:
            code, _ = v.stop()
        self.assertEqual(code, 0)
        self.assertNotIn("watchdog", read(v.log_path))


PAC_RUNNER = r"""
// A PAC engine's environment: Netscape's functions, as browsers define them.
const vm = require("vm");
const fs = require("fs");
function ip4(a) { return a.split(".").reduce((n, o) => n * 256 + Number(o), 0); }
const sandbox = {
  isPlainHostName: h => h.indexOf(".") < 0,
  dnsDomainIs: (h, d) => h.length >= d.length && h.substring(h.length - d.length) === d,
  isInNet: (h, base, mask) => {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(h)) throw new Error("isInNet would resolve " + h);
    return (ip4(h) & ip4(mask)) >>> 0 === (ip4(base) & ip4(mask)) >>> 0;
  },
  dnsResolve: h => { throw new Error("the PAC file must not resolve names: " + h); },
  shExpMatch: () => { throw new Error("the PAC file must not use patterns"); },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
const out = {};
for (const url of JSON.parse(fs.readFileSync(process.argv[3], "utf8"))) {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  out[url] = sandbox.FindProxyForURL(url, host);
}
console.log(JSON.stringify(out));
"""


def evaluate_pac(pac_text, urls):
    d = tempfile.mkdtemp(prefix="vigil-pac-")
    try:
        for name, text in (("proxy.pac", pac_text), ("urls.json", json.dumps(urls)), ("run.js", PAC_RUNNER)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        p = subprocess.run(["node", os.path.join(d, "run.js"), os.path.join(d, "proxy.pac"),
                            os.path.join(d, "urls.json")], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError("node: " + p.stderr)
        return json.loads(p.stdout)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class PacTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = start("--set", 'pac.proxies=["gw1.corp.example:3128", "gw2.corp.example:3128"]',
                      "--set", 'pac.direct_hosts=["intranet.corp.example", ".internal.example"]')

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()

    def test_the_pac_file_routes_a_table_of_urls(self):
        status, ctype, pac = admin_get(self.v, "/proxy.pac")
        self.assertEqual((status, ctype), (200, "application/x-ns-proxy-autoconfig"))
        both = "PROXY gw1.corp.example:3128; PROXY gw2.corp.example:3128"
        table = {
            "http://intranet/": "DIRECT",
            "https://intranet.corp.example/x": "DIRECT",
            "https://INTRANET.corp.example/": "DIRECT",
            "https://evilintranet.corp.example/": both,
            "https://intranet.corp.example.attacker.test/": both,
            "https://internal.example/": "DIRECT",
            "https://wiki.internal.example/page": "DIRECT",
            "https://notinternal.example/": both,
            "https://internal.example.attacker.test/": both,
            "http://10.1.2.3/": "DIRECT",
            "http://192.168.1.1:8080/": "DIRECT",
            "http://172.16.5.5/": "DIRECT",
            "http://172.32.0.1/": both,
            "http://8.8.8.8/": both,
            "http://127.0.0.1:631/": "DIRECT",
            "http://10.evil.test/": both,
            "https://example.com/": both,
            "http://[2001:db8::1]/": both,
        }
        self.assertEqual(evaluate_pac(pac, list(table)), table)

    def test_wpad_dat_is_the_same_file(self):
        self.assertEqual(admin_get(self.v, "/wpad.dat")[2], admin_get(self.v, "/proxy.pac")[2])

    def test_fallback_direct_and_the_default_proxy(self):
        v = start("--set", "pac.fallback_direct=true", "--set", "pac.plain_hostnames_direct=false",
                  "--set", "pac.direct_networks=[]")
        try:
            status, _, pac = admin_get(v, "/proxy.pac")
            self.assertEqual(status, 200)
            # No pac.proxies: the name the file was fetched by, at the proxy's port.
            want = "PROXY 127.0.0.1:%d; DIRECT" % v.port
            self.assertEqual(evaluate_pac(pac, ["http://intranet/", "http://10.0.0.1/", "https://a.example/"]),
                             {"http://intranet/": want, "http://10.0.0.1/": want, "https://a.example/": want})
            # Through the proxy on the onboarding host: the address the client reached it at.
            code, status, headers, body, err = curl("-x", v.proxy, "http://vigil.invalid/proxy.pac")
            self.assertEqual((code, status), (0, 200), err)
            self.assertIn("return \"PROXY 127.0.0.1:%d; DIRECT\";" % v.port, body.decode())
        finally:
            v.stop()

    def test_proxy_clients_get_the_pac_but_not_the_operators_pages(self):
        v = start("--set", 'admin.allow=["192.0.2.1/32"]')  # loopback is a proxy client, not an operator
        try:
            self.assertEqual(admin_get(v, "/proxy.pac")[0], 200)
            self.assertEqual(admin_get(v, "/vigil-root.pem")[0], 200)
            for path in ("/metrics", "/healthz", "/readyz"):
                status, _, body = admin_get(v, path)
                self.assertEqual(status, 403, path)
                self.assertIn("not in admin.allow", body)
        finally:
            v.stop()

    @unittest.skipUnless(CHROMIUM, "chromium is installed by `make deps`")
    def test_chromium_follows_the_pac_file_through_the_gateway(self):
        v = start()
        try:
            before = v.metric("plain")
            url = "http://plain.test:%d/hello" % W["plain"].port
            profile = tempfile.mkdtemp(prefix="vigil-pac-chromium-")
            p = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
                                "--proxy-pac-url=http://127.0.0.1:%d/proxy.pac" % v.admin_port, "--dump-dom", url],
                               capture_output=True, text=True, timeout=120)
            shutil.rmtree(profile, ignore_errors=True)
            self.assertIn("hello from plain", p.stdout, p.stderr[-2000:])
            # plain.test has a dot and no private literal: the PAC sent it to the gateway.
            self.assertGreater(v.metric("plain"), before)
        finally:
            v.stop()


class KitProxyTest(unittest.TestCase):
    """vigil-ca kit --pac-url/--proxy: the files each platform reads, read by real tools where
    this machine has them (bash and curl, GNOME's gsettings, Python's plistlib)."""

    @classmethod
    def setUpClass(cls):
        cls.v = start()
        cls.kit = os.path.join(W["dir"], "kit-proxy")
        cls.pac = "http://127.0.0.1:%d/proxy.pac" % cls.v.admin_port
        run([VIGIL_CA, "kit", "--dir", W["ca"], "--out", cls.kit, "--pac-url", cls.pac,
             "--proxy", "127.0.0.1:%d" % cls.v.port, "--no-proxy", "intranet.corp.example",
             "--no-proxy", ".internal.example"])

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()

    def test_shell_settings_send_curl_through_the_gateway(self):
        before = self.v.metric("bumped")
        script = (". %s/proxy/shell/proxy.sh && curl -sS --max-time 30 --cacert %s/vigil-root.pem "
                  "https://good.test:%d/hello" % (self.kit, self.kit, W["good"].port))
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                           env={"PATH": os.environ["PATH"]})
        self.assertEqual((p.returncode, p.stdout), (0, "hello from good"), p.stderr)
        self.assertEqual(self.v.metric("bumped"), before + 1)
        env = subprocess.run(["bash", "-c", ". %s/proxy/shell/proxy.sh && echo $no_proxy && echo $JAVA_TOOL_OPTIONS"
                              % self.kit], capture_output=True, text=True).stdout
        self.assertIn("intranet.corp.example,.internal.example", env)
        self.assertIn("-Dhttp.nonProxyHosts=localhost|127.*|intranet.corp.example|*.internal.example", env)

    @unittest.skipUnless(shutil.which("gsettings"), "gsettings is installed by `make deps`")
    def test_gnome_settings_land_in_gsettings(self):
        home = tempfile.mkdtemp(prefix="vigil-gsettings-")
        env = {"PATH": os.environ["PATH"], "HOME": home, "XDG_CONFIG_HOME": home, "GSETTINGS_BACKEND": "keyfile"}
        try:
            p = subprocess.run(["sh", os.path.join(self.kit, "proxy", "linux", "gnome.sh")], capture_output=True,
                               text=True, env=env, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            get = lambda key: subprocess.run(["gsettings", "get", "org.gnome.system.proxy", key], capture_output=True,
                                             text=True, env=env).stdout.strip()
            self.assertEqual(get("mode"), "'auto'")
            self.assertEqual(get("autoconfig-url"), "'%s'" % self.pac)
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def test_windows_and_apple_files(self):
        import plistlib
        with open(os.path.join(self.kit, "proxy", "macos", "proxy.mobileconfig"), "rb") as f:
            profile = plistlib.load(f)
        payload = profile["PayloadContent"][0]
        self.assertEqual((payload["PayloadType"], payload["ProxyType"], payload["ProxyPACURL"]),
                         ("com.apple.proxy.http.global", "Auto", self.pac))
        self.assertFalse(payload["ProxyPACFallbackAllowed"])  # no PAC, no browsing: not DIRECT
        with open(os.path.join(self.kit, "proxy", "windows", "proxy.reg"), encoding="ascii") as f:
            reg = f.read()
        self.assertTrue(reg.startswith("Windows Registry Editor Version 5.00\n"))
        self.assertIn('"AutoConfigURL"="%s"' % self.pac, reg)
        self.assertIn('"ProxyOverride"="<local>;intranet.corp.example;internal.example;*.internal.example"', reg)
        self.assertEqual(reg.count('"ProxyMode"="pac_script"'), 2)  # Chrome and Edge policies
        with open(os.path.join(self.kit, "README.md")) as f:
            self.assertIn("## Proxy settings", f.read())

    def test_values_that_would_break_out_of_a_file_are_refused(self):
        for args, why in ((["--proxy", "gw;reboot:3128"], "--proxy: expected HOST:PORT"),
                          (["--pac-url", "http://gw/proxy.pac\"; rm -rf ~"], "--pac-url: the URL has"),
                          (["--pac-url", "file:///etc/passwd"], "--pac-url: expected an http://"),
                          (["--proxy", "gw:3128", "--no-proxy", "*.corp"], "no patterns"),
                          (["--no-proxy", "intranet"], "--no-proxy needs --proxy or --pac-url")):
            out = os.path.join(W["dir"], "kit-refused")
            p = subprocess.run([VIGIL_CA, "kit", "--dir", W["ca"], "--out", out] + args, capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(why, p.stderr)
            self.assertFalse(os.path.exists(out))


class MonitoringTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = start("--audit", os.path.join(W["dir"], "monitoring-audit.db"))
        code, status = bumped_get(cls.v)[:2]
        assert (code, status) == (0, 200)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % cls.v.admin_port, timeout=10) as r:
            cls.metrics = r.read().decode()

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()

    def value(self, series):
        m = re.search(r"^%s (\S+)$" % re.escape(series), self.metrics, re.M)
        self.assertIsNotNone(m, series + " is not on /metrics")
        return float(m.group(1))

    def test_promtool_accepts_the_exposition(self):
        p = subprocess.run(["promtool", "check", "metrics"], input=self.metrics, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_latency_histograms_count_the_request(self):
        for name in ("time_to_first_byte_seconds", "origin_connect_seconds", "client_tls_handshake_seconds",
                     "origin_tls_handshake_seconds", "mint_seconds"):
            count = self.value("vigil_%s_count" % name)
            self.assertGreaterEqual(count, 1, name)
            self.assertEqual(self.value('vigil_%s_bucket{le="+Inf"}' % name), count)
            self.assertGreater(self.value("vigil_%s_sum" % name), 0, name)
            self.assertLess(self.value("vigil_%s_sum" % name), 60 * count, name)

    def test_ca_expiry_ruleset_age_and_audit_health(self):
        # vigil-ca init: a root for 3650 days, an issuing CA for 730.
        issuing = self.value('vigil_ca_expiry_seconds{ca="issuing"}')
        self.assertAlmostEqual(issuing / 86400, 730, delta=2)
        self.assertAlmostEqual(self.value('vigil_ca_expiry_seconds{ca="root"}') / 86400, 3650, delta=2)
        self.assertLess(self.value("vigil_ruleset_age_seconds"), 600)
        self.assertGreater(self.value("vigil_start_time_seconds"), time.time() - 600)

    def test_alert_rules_pass_promtool_and_their_unit_tests(self):
        for args in (["check", "rules", os.path.join(MONITORING, "alerts.yml")],
                     ["test", "rules", os.path.join(MONITORING, "alerts_test.yml")]):
            p = subprocess.run(["promtool"] + args, capture_output=True, text=True, timeout=60, cwd=MONITORING)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_dashboard_and_alerts_read_only_metrics_the_gateway_exports(self):
        exported = set(re.findall(r"^# TYPE (vigil_\w+) ", self.metrics, re.M))
        with open(os.path.join(MONITORING, "grafana-vigil.json")) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 15)
        with open(os.path.join(MONITORING, "alerts.yml")) as f:
            exprs.append(f.read())
        used = set()
        for e in exprs:
            used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bvigil_\w+", e)}
        self.assertFalse(used - exported, "not exported by the gateway: %s" % sorted(used - exported))


if __name__ == "__main__":
    unittest.main()
