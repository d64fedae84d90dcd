"""Enterprise identity (issue 25) against real servers: an MIT KDC and OpenLDAP's slapd started
on loopback (identity_servers.py). A kinit-ed curl signs in with Negotiate and no password,
nested directory groups reach policy, bad, foreign and replayed tickets get 407, Basic is
checked against the directory, the directory going down behaves as auth.directory_unavailable
says, and every decision is in the audit log with the principal and the groups."""
import base64
import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest

from harness import Origin, Pki, Vigil, VIGIL_CA, curl, make_workdir, remove_workdir, run
from identity_servers import REALM, Kdc, Slapd

BIN = os.path.dirname(VIGIL_CA)
RULES, AUDIT = os.path.join(BIN, "vigil-rules"), os.path.join(BIN, "vigil-audit")
W = {}
PROXY_NAME = "proxy.example.test"


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "Identity test"])
    pki = W["pki"] = Pki(d)
    W["good"] = Origin("good", *pki.leaf("good", "good.test"))
    W["pay"] = Origin("pay", *pki.leaf("pay", "pay.test"))
    W["plain"] = Origin("plain")
    W["kdc"] = Kdc(d, service="HTTP/" + PROXY_NAME,
                   users=[("alice", "alice-pw"), ("bob", "bob-pw"), ("dave", "dave-pw"), ("erin", "erin-pw")])
    W["kdc"].kadmin("addprinc -randkey HTTP/other.example.test")  # a service Vigil has no key for
    os.environ["KRB5_CONFIG"] = W["kdc"].krb5_conf  # the gateway's /etc/krb5.conf
    # alice is in payroll, payroll in finance: finance only through nesting. carol is only in
    # the directory (Basic), bob in engineering, dave in no group.
    W["ldap"] = Slapd(d, pki, users=[("alice", "alice-ldap"), ("bob", "bob-ldap"), ("carol", "carol-pw"),
                                     ("dave", "dave-ldap")],
                      groups={"payroll": ["user:alice"], "finance": ["group:payroll"], "engineering": ["user:bob"]})
    secret = W["secret"] = os.path.join(d, "ldap-bind.secret")
    with open(secret, "w") as f:
        f.write(W["ldap"].bind_password + "\n")
    os.chmod(secret, 0o600)
    rules = W["rules"] = os.path.join(d, "rules.db")
    run([RULES, "--db", rules, "init"])
    run([RULES, "--db", rules, "add", "category", "payments"])
    run([RULES, "--db", rules, "add", "host", "pay.test", "--category", "payments"])
    run([RULES, "--db", rules, "add", "policy", "finance-no-payments", "--action", "block", "--category", "payments",
         "--group", "finance"])
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")


def tearDownModule():
    for k in ("good", "pay", "plain", "kdc", "ldap"):
        if k in W:
            W[k].close()
    remove_workdir(W["dir"])


def gateway(name, unavailable="deny", extra=()):
    audit = os.path.join(W["dir"], name + "-audit.db")
    v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
        "--rules", W["rules"], "--audit", audit,
        "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%d,%d]" % (W["good"].port, W["pay"].port),
        "--set", "auth.required=true", "--set", 'auth.methods=["negotiate", "basic"]',
        "--set", 'auth.kerberos_keytab="%s"' % W["kdc"].keytab,
        "--set", 'auth.kerberos_principal="HTTP/%s@%s"' % (PROXY_NAME, REALM),
        "--set", 'auth.directory_unavailable="%s"' % unavailable,
        "--set", "auth.max_failures=1000",
        "--set", 'ldap.url="%s"' % W["ldap"].url, "--set", 'ldap.ca_file="%s"' % W["pki"].ca_pem,
        "--set", 'ldap.bind_dn="%s"' % W["ldap"].bind_dn, "--set", 'ldap.bind_password_file="%s"' % W["secret"],
        "--set", 'ldap.base_dn="dc=example,dc=test"', "--set", 'ldap.user_filter="(uid={user})"'] + list(extra))
    v.audit = audit
    return v


def proxied(args, env=None):
    """curl through the gateway: (status, body, stderr); the status is the CONNECT's when the
    gateway refused the tunnel (407, 503), else the page's."""
    p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{http_connect}", "--max-time", "30",
                        "--cacert", os.path.join(W["ca"], "root.pem")] + args,
                       capture_output=True, text=True, env=env, timeout=60)
    body, _, codes = p.stdout.rpartition("\n")
    page, tunnel = (codes.split() + ["0", "0"])[:2]
    return int(page) or int(tunnel), body, p.stderr


def negotiate_curl(v, user, url, proxy_name=PROXY_NAME):
    """curl --proxy-negotiate -U : after kinit: no password is given to curl."""
    env = W["kdc"].kinit(user, os.path.join(W["dir"], user + ".cc"))
    return proxied(["--proxy-negotiate", "-U", ":", "-x", "http://%s:%d" % (proxy_name, v.port),
                    "--resolve", "%s:%d:127.0.0.1" % (proxy_name, v.port), url], env)


def basic_curl(v, credentials, url):
    return proxied(["-x", v.proxy, "-U", credentials, url])


def records(v, *args):
    time.sleep(0.3)  # the writer commits every 10 ms; give it a moment
    p = subprocess.run([AUDIT, "--db", v.audit, "query", "--json", "--limit", "1000"] + list(args),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def good_url(path="/hello"):
    return "https://good.test:%d%s" % (W["good"].port, path)


def pay_url():
    return "https://pay.test:%d/hello" % W["pay"].port


class CapturedToken:
    """A real client's Negotiate token: curl talks to this fake proxy, which answers 407
    Negotiate and keeps the token curl sends next."""

    def __init__(self, user):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.token = None
        t = threading.Thread(target=self._serve, daemon=True)
        t.start()
        env = W["kdc"].kinit(user, os.path.join(W["dir"], user + "-capture.cc"))
        subprocess.run(["curl", "-s", "--max-time", "10", "--proxy-negotiate", "-U", ":", "-x",
                        "http://%s:%d" % (PROXY_NAME, self.port), "--resolve", "%s:%d:127.0.0.1" % (PROXY_NAME, self.port),
                        "http://good.test/"], env=env, capture_output=True, timeout=30)
        t.join(10)
        self.sock.close()

    def _serve(self):
        for _ in range(3):
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                while True:
                    data = b""
                    try:
                        while b"\r\n\r\n" not in data:
                            chunk = c.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                    except socket.timeout:
                        break
                    if not data:
                        break
                    m = re.search(rb"Proxy-Authorization: Negotiate (\S+)", data)
                    if m:
                        self.token = m.group(1).decode()
                        c.sendall(b"HTTP/1.1 502 Captured\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        return
                    c.sendall(b"HTTP/1.1 407 Sign in\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")


def raw_status(v, header):
    """A CONNECT with this header: the gateway's answer head (200 once signed in)."""
    s = socket.create_connection(("127.0.0.1", v.port), timeout=10)
    target = "good.test:%d" % W["good"].port
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, target, header)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode("latin-1")


class NegotiateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = gateway("negotiate")

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()

    def test_kinit_curl_reaches_a_page_through_the_bump_without_a_password(self):
        status, body, err = negotiate_curl(self.v, "alice", good_url())
        self.assertEqual((status, body), (200, "hello from good"), err)
        recs = [r for r in records(self.v, "--user", "alice@EXAMPLE.TEST") if r["host"] == "good.test"]
        self.assertTrue(recs)
        self.assertEqual(recs[0]["action"], "allow")
        self.assertEqual(set(recs[0]["group"].split(",")), {"payroll", "finance"})

    def test_a_user_in_a_nested_group_gets_that_groups_policy(self):
        status, body, _ = negotiate_curl(self.v, "alice", pay_url())  # finance, through payroll
        self.assertEqual(status, 403)
        self.assertIn("finance-no-payments", body)
        status, body, err = negotiate_curl(self.v, "bob", pay_url())  # engineering
        self.assertEqual((status, body), (200, "hello from pay"), err)
        blocked = records(self.v, "--user", "alice@EXAMPLE.TEST", "--group", "finance", "--action", "block")
        self.assertTrue(any(r["host"] == "pay.test" and r["rule"] == "finance-no-payments" for r in blocked))
        self.assertEqual(records(self.v, "--user", "bob@EXAMPLE.TEST", "--group", "finance"), [])
        self.assertTrue(records(self.v, "--group", "engineering", "--host", "pay.test"))

    def test_a_bad_ticket_gets_407_with_both_challenges(self):
        head = raw_status(self.v, "Proxy-Authorization: Negotiate " + base64.b64encode(b"\x60\x10not a ticket").decode() + "\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 407"), head)
        self.assertIn("Proxy-Authenticate: Negotiate\r\n", head)
        self.assertIn('Proxy-Authenticate: Basic realm="Vigil"', head)
        self.assertIn("Kerberos sign-in from 127.0.0.1 refused:", self.v.read_log())
        refused = [r for r in records(self.v, "--action", "refuse") if r["status"] == 407]
        self.assertTrue(any("Kerberos ticket was not accepted" in r["reason"] for r in refused), refused)

    def test_a_ticket_for_another_service_is_refused_and_named(self):
        # The client reached the gateway by a name whose key Vigil does not hold (wrong SPN).
        status, _, _ = negotiate_curl(self.v, "dave", good_url(), proxy_name="other.example.test")
        self.assertEqual(status, 407)
        log = self.v.read_log()
        self.assertRegex(log, r"Kerberos sign-in from 127\.0\.0\.1 refused: .*(other\.example\.test|[Ww]rong principal)")

    def test_a_replayed_ticket_is_refused(self):
        token = CapturedToken("dave").token
        self.assertIsNotNone(token, "curl sent no Negotiate token")
        first = raw_status(self.v, "Proxy-Authorization: Negotiate %s\r\n" % token)
        self.assertTrue(first.startswith("HTTP/1.1 200"), first)
        again = raw_status(self.v, "Proxy-Authorization: Negotiate %s\r\n" % token)
        self.assertTrue(again.startswith("HTTP/1.1 407"), again)
        self.assertRegex(self.v.read_log(), r"refused: .*[Rr]eplay")

    def test_a_principal_the_directory_does_not_know_signs_in_without_groups(self):
        # erin has a Kerberos principal and no directory entry: signed in, no groups, so the
        # finance policy does not apply; not a directory outage either.
        status, body, err = negotiate_curl(self.v, "erin", pay_url())
        self.assertEqual((status, body), (200, "hello from pay"), err)
        rec = records(self.v, "--user", "erin@EXAMPLE.TEST", "--host", "pay.test")[0]
        self.assertEqual((rec["group"], rec["reason"]), ("", ""))

    def test_basic_is_checked_against_the_directory(self):
        status, body, err = basic_curl(self.v, "carol:carol-pw", good_url())
        self.assertEqual((status, body), (200, "hello from good"), err)
        self.assertEqual(basic_curl(self.v, "carol:nope", good_url())[0], 407)
        self.assertEqual(basic_curl(self.v, "carol:", good_url())[0], 407)  # an unauthenticated bind must not pass
        self.assertTrue(records(self.v, "--user", "carol", "--action", "allow"))


class ConnectionTest(unittest.TestCase):
    def test_negotiate_signs_in_the_connection_once(self):
        v = gateway("keepalive")
        try:
            token = CapturedToken("alice").token
            s = socket.create_connection(("127.0.0.1", v.port), timeout=10)
            url = "http://plain.test:%d/hello" % W["plain"].port
            heads, pending = [], b""
            for header in ("Proxy-Authorization: Negotiate %s\r\n" % token, ""):
                s.sendall(("GET %s HTTP/1.1\r\nHost: plain.test:%d\r\n%s\r\n" % (url, W["plain"].port, header)).encode())
                while b"\r\n\r\n" not in pending:
                    pending += s.recv(65536)
                head, pending = pending.split(b"\r\n\r\n", 1)
                length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
                while len(pending) < length:
                    pending += s.recv(65536)
                pending = pending[length:]
                heads.append(head.split(b"\r\n", 1)[0])
            s.close()
            # The second request carries nothing: the connection is alice's (RFC 4559).
            self.assertEqual(heads, [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"])
            # A new connection without a token is a new sign-in.
            self.assertTrue(raw_status(v, "").startswith("HTTP/1.1 407"))
            recs = records(v, "--user", "alice@EXAMPLE.TEST", "--host", "plain.test")
            self.assertEqual(len(recs), 2)
        finally:
            v.stop()


class DirectoryTlsTest(unittest.TestCase):
    def test_starttls_works_and_an_unverified_directory_is_unavailable(self):
        starttls = gateway("starttls", extra=["--set", 'ldap.url="ldap://127.0.0.1:%d"' % W["ldap"].starttls_port,
                                              "--set", "ldap.start_tls=true"])
        other_ca = gateway("otherca", extra=["--set", 'ldap.ca_file="%s"' % W["pki"].other_ca_pem])
        try:
            self.assertEqual(basic_curl(starttls, "carol:carol-pw", good_url())[0], 200)
            # A directory whose certificate does not verify is not talked to: unavailable, 503.
            self.assertEqual(basic_curl(other_ca, "carol:carol-pw", good_url())[0], 503)
        finally:
            starttls.stop()
            other_ca.stop()
        self.assertRegex(other_ca.read_log(), r"directory unreachable \(bind as cn=vigil.*\)")

    def test_lookups_per_second_are_bounded(self):
        v = gateway("bounded", extra=["--set", "ldap.max_lookups_per_second=1"])
        try:
            self.assertEqual(negotiate_curl(v, "alice", good_url())[0], 200)  # the one lookup this second
            self.assertEqual(negotiate_curl(v, "bob", good_url())[0], 503)    # no token left: as if down
            time.sleep(1.1)
            self.assertEqual(negotiate_curl(v, "bob", good_url())[0], 200)
        finally:
            v.stop()
        self.assertIn("more than ldap.max_lookups_per_second directory lookups", v.read_log())


class DirectoryDownTest(unittest.TestCase):
    """slapd stopped mid-run, then started again."""

    def test_deny_and_allow_authenticated(self):
        deny = gateway("deny", "deny", ["--set", "ldap.cache_ttl=1", "--set", "ldap.stale_ttl=4"])
        allow = gateway("allow", "allow-authenticated", ["--set", "ldap.cache_ttl=1"])
        try:
            self.assertEqual(negotiate_curl(deny, "alice", good_url())[0], 200)  # groups now cached
            W["ldap"].stop()
            time.sleep(1.2)  # past cache_ttl: the directory is asked, and does not answer
            # Known groups serve while stale_ttl lasts; an unknown user cannot be placed: 503.
            status, body, _ = negotiate_curl(deny, "alice", pay_url())
            self.assertEqual(status, 403, body)  # still finance: the stale groups applied
            self.assertEqual(negotiate_curl(deny, "bob", good_url())[0], 503)
            time.sleep(3.2)  # past stale_ttl
            self.assertEqual(negotiate_curl(deny, "alice", good_url())[0], 503)
            # allow-authenticated: signed in by Kerberos, no directory groups, said in the record.
            status, body, err = negotiate_curl(allow, "bob", good_url())
            self.assertEqual((status, body), (200, "hello from good"), err)
            self.assertEqual(negotiate_curl(allow, "alice", pay_url())[0], 200)  # finance unknown now
            recs = records(allow, "--user", "alice@EXAMPLE.TEST", "--host", "pay.test")
            self.assertEqual(recs[0]["group"], "")
            self.assertIn("directory unreachable", recs[0]["reason"])
            # Basic for a directory-only user cannot be checked: 503, not a silent pass.
            self.assertEqual(basic_curl(allow, "carol:carol-pw", good_url())[0], 503)
            refused = [r for r in records(deny) if r["status"] == 503]
            self.assertEqual([r["user"] for r in refused], ["alice@EXAMPLE.TEST", "bob@EXAMPLE.TEST"], refused)
            for r in refused:  # newest first: alice past stale_ttl, then bob
                self.assertEqual(r["action"], "error")
                self.assertIn("company directory cannot be reached", r["reason"])
        finally:
            W["ldap"].start()
            deny.stop()
            allow.stop()
        self.assertIn("refusing bob@EXAMPLE.TEST (auth.directory_unavailable = deny)", deny.read_log())
        self.assertIn("using the cached groups of alice@EXAMPLE.TEST", deny.read_log())


class ConsoleSignInTest(unittest.TestCase):
    """vigil-console's sign-in against the directory: roles from (nested) groups."""

    def test_directory_groups_give_console_roles(self):
        g = gateway("console-audit")  # an audit log for the console to read
        g.stop()
        ready = os.path.join(W["dir"], "console-ready.json")
        args = [os.path.join(BIN, "vigil-console"), "--set", 'tls.ca_dir="%s"' % W["ca"],
                "--set", 'rules.path="%s"' % W["rules"], "--set", 'audit.path="%s"' % g.audit,
                "--set", 'console.users="%s"' % os.path.join(W["dir"], "console.db"),
                "--set", 'console.listen="127.0.0.1:0"', "--set", 'console.analyst_groups=["finance"]',
                "--set", 'console.viewer_groups=["engineering"]',
                "--set", 'ldap.url="%s"' % W["ldap"].url, "--set", 'ldap.ca_file="%s"' % W["pki"].ca_pem,
                "--set", 'ldap.bind_dn="%s"' % W["ldap"].bind_dn, "--set", 'ldap.bind_password_file="%s"' % W["secret"],
                "--set", 'ldap.base_dn="dc=example,dc=test"', "serve", "--ready-file", ready]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 15
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.05)
            with open(ready) as f:
                base = "https://127.0.0.1:%d" % json.load(f)["port"]

            def sign_in(user, password):
                jar = os.path.join(W["dir"], "jar-" + user)
                page = subprocess.run(["curl", "-sk", "-c", jar, "-b", jar, base + "/login"], capture_output=True,
                                      text=True).stdout
                token = re.search(r'name="csrf" value="(\w+)"', page).group(1)
                status = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-c", jar, "-b", jar,
                                         "--data-urlencode", "csrf=" + token, "--data-urlencode", "user=" + user,
                                         "--data-urlencode", "password=" + password, base + "/login"],
                                        capture_output=True, text=True).stdout
                rules = subprocess.run(["curl", "-sk", "-b", jar, base + "/rules"], capture_output=True, text=True).stdout
                return status, rules

            status, rules = sign_in("alice", "alice-ldap")  # finance through payroll: analyst
            self.assertEqual(status, "303")
            self.assertIn("alice (analyst)", rules)
            self.assertIn('id="test"', rules)
            status, rules = sign_in("bob", "bob-ldap")      # engineering: viewer
            self.assertEqual(status, "303")
            self.assertIn("bob (viewer)", rules)
            self.assertNotIn('id="test"', rules)
            self.assertEqual(sign_in("carol", "carol-pw")[0], "401")   # in no console group
            self.assertEqual(sign_in("alice", "wrong")[0], "401")
        finally:
            proc.terminate()
            proc.wait(10)
        events = subprocess.run([os.path.join(BIN, "vigil-console"), "--set", 'tls.ca_dir="%s"' % W["ca"],
                                 "--set", 'console.users="%s"' % os.path.join(W["dir"], "console.db"), "events"],
                                capture_output=True, text=True).stdout
        self.assertIn("alice  sign-in: analyst (directory)", events)
        self.assertIn("carol  sign-in failed: not in a console group", events)


class ConfigTest(unittest.TestCase):
    def test_missing_keytab_and_plain_ldap_are_refused_at_start(self):
        vigil = os.path.join(BIN, "vigil")
        base = [vigil, "--ca-dir", W["ca"], "--set", "auth.required=true", "--check-config"]
        p = subprocess.run(base + ["--set", 'auth.methods=["negotiate"]'], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("auth.kerberos_keytab is needed", p.stderr)
        p = subprocess.run(base + ["--set", 'auth.methods=["negotiate"]', "--set",
                                   'auth.kerberos_keytab="/nonexistent.keytab"'], capture_output=True, text=True)
        self.assertIn("auth.kerberos_keytab /nonexistent.keytab: No such file or directory", p.stderr)
        p = subprocess.run(base + ["--set", 'ldap.url="ldap://127.0.0.1:389"', "--set", 'ldap.base_dn="dc=x"'],
                           capture_output=True, text=True)
        self.assertIn("plain LDAP would send passwords in clear", p.stderr)


if __name__ == "__main__":
    unittest.main()
