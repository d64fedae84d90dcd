"""Rules and inspection through the real gateway and the real vigil-rules tool: signatures in
plain and bumped bodies (encoded, chunked, uploads), DLP, category block, bypass splice, warn,
late matches, hot reload under load, and a bad import that changes nothing."""

import json
import os
import re
import urllib.parse
import signal
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import (BIN_DIR, EICAR, Origin, Pki, Vigil, VIGIL, VIGIL_CA, curl, make_workdir, remove_workdir, run)

RULES = os.path.join(BIN_DIR, "vigil-rules")
DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "rules", "default", "default.json")
W = {}


def vr(*args, check=True):
    return subprocess.run([RULES, "--db", W["db"], "--actor", "tests"] + list(args), capture_output=True,
                          text=True, check=check)


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["tls"] = Origin("tls", *pki.leaf("shop", "shop.test"))
    W["bank"] = Origin("bank", *pki.leaf("bank", "www.bank.test"))
    W["blocked"] = Origin("blocked", *pki.leaf("blocked", "x.blocked.test"))
    W["plain"] = Origin("plain")
    W["db"] = os.path.join(d, "rules.db")
    vr("init")
    vr("import", DEFAULT)
    vr("add", "host", ".blocked.test", "--category", "malware")
    vr("add", "host", ".bank.test", "--category", "finance")
    vr("add", "category", "risky", "--description", "warned, not blocked")
    vr("add", "host", "warn.test", "--category", "risky")
    vr("add", "policy", "warn-risky", "--action", "warn", "--priority", "30", "--category", "risky")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test warn.test\n")
    ports = ",".join(str(W[k].port) for k in ("tls", "bank", "blocked"))
    W["hosts"] = hosts
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--rules", W["db"], "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%s]" % ports, "--set", "rules.reload_interval=1"])


def tearDownModule():
    if W["vigil"].proc.poll() is None:
        W["vigil"].stop()
    for k in ("tls", "bank", "blocked", "plain"):
        W[k].close()
    remove_workdir(W["dir"])


def proxy():
    return W["vigil"].proxy


def root():
    return os.path.join(W["ca"], "root.pem")


def plain(path):
    return "http://plain.test:%d%s" % (W["plain"].port, path)


def shop(path):
    return "https://shop.test:%d%s" % (W["tls"].port, path)


class SignatureTest(unittest.TestCase):
    def assertBlockedBy(self, result, rule):
        code, status, headers, body, err = result
        self.assertEqual(status, 403, (code, err, body[:300]))
        self.assertIn("X-Vigil-Reason: blocked", headers)
        self.assertIn(('id="rule">%s<' % rule).encode(), body)
        self.assertNotIn(EICAR, body)

    def test_eicar_in_plain_response(self):
        self.assertBlockedBy(curl("-x", proxy(), plain("/eicar")), "eicar-download")

    def test_eicar_in_bumped_https_response(self):
        self.assertBlockedBy(curl("-x", proxy(), "--cacert", root(), shop("/eicar")), "eicar-download")

    def test_eicar_gzip_br_and_nested(self):
        for path in ("/eicar-gzip", "/eicar-br", "/eicar-gzip-br"):
            with self.subTest(path=path):
                self.assertBlockedBy(curl("-x", proxy(), plain(path)), "eicar-download")
                self.assertBlockedBy(curl("-x", proxy(), "--cacert", root(), shop(path)), "eicar-download")

    def test_eicar_with_codings_in_several_field_lines(self):
        # Two Content-Encoding lines form one list (RFC 9110 5.3): the body is gzip twice, and
        # reading only the first line left it undecoded and the EICAR string unseen.
        self.assertBlockedBy(curl("-x", proxy(), plain("/eicar-gzip-twice")), "eicar-download")
        self.assertBlockedBy(curl("-x", proxy(), "--cacert", root(), shop("/eicar-gzip-twice")), "eicar-download")

    def test_excessive_or_unknown_coding_list_follows_on_error(self):
        # Five codings, or one Vigil cannot decode: the body cannot be inspected, which is
        # inspect.on_error's case (block by default), counted as unscanned.
        for path in ("/eicar-five-codings", "/zstd"):
            with self.subTest(path=path):
                before = W["vigil"].metric("unscanned")
                code, status, headers, body, err = curl("-x", proxy(), plain(path))
                self.assertEqual(status, 403)
                self.assertIn(b"unscannable-encoding", body)
                self.assertEqual(W["vigil"].metric("unscanned"), before + 1)

    def test_origins_are_offered_only_codings_vigil_decodes(self):
        code, status, headers, body, err = curl("-x", proxy(), "-H", "Accept-Encoding: zstd, br, gzip;q=0.5",
                                                plain("/headers"))
        self.assertEqual(json.loads(body)["accept-encoding"], "br, gzip;q=0.5")

    def test_eicar_split_across_chunks(self):
        self.assertBlockedBy(curl("-x", proxy(), plain("/eicar-split")), "eicar-download")
        self.assertBlockedBy(curl("-x", proxy(), "--cacert", root(), shop("/eicar-split")), "eicar-download")

    def test_eicar_upload_never_reaches_origin(self):
        before = W["plain"].stats["requests"]
        p = subprocess.run(["curl", "-sS", "-x", proxy(), "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                            b"@-", plain("/upload")], input=b"upload: " + EICAR, capture_output=True)
        self.assertEqual(p.stdout, b"403", p.stderr)
        time.sleep(0.1)
        self.assertEqual(W["plain"].stats["requests"], before)

    def test_luhn_valid_card_blocked_invalid_passes(self):
        code, status, headers, body, err = curl("-x", proxy(), "--data", '{"card": "4111 1111 1111 1111"}',
                                                plain("/upload"))
        self.assertEqual(status, 403)
        self.assertIn(b"dlp-payment-card", body)
        code, status, headers, body, err = curl("-x", proxy(), "--data", '{"card": "4111 1111 1111 1112"}',
                                                plain("/upload"))
        self.assertEqual(status, 200, body)
        code, status, headers, body, err = curl("-x", proxy(), "--cacert", root(), "--data",
                                                "ssn=123-45-6789", shop("/upload"))
        self.assertEqual(status, 403)
        self.assertIn(b"dlp-us-ssn", body)

    def test_late_match_aborts_the_transfer(self):
        code, status, headers, body, err = curl("-x", proxy(), plain("/eicar-late"))
        self.assertNotEqual(code, 0)  # curl sees a transfer cut short
        self.assertLess(len(body), 2 * (1 << 20) + len(EICAR))
        self.assertNotIn(EICAR, body)

    def test_clean_content_passes(self):
        code, status, headers, body, err = curl("-x", proxy(), "--cacert", root(), shop("/hello"))
        self.assertEqual((status, body), (200, b"hello from tls"))


class CategoryTest(unittest.TestCase):
    def test_category_block_on_connect_serves_https_block_page(self):
        before = W["blocked"].stats["connections"]
        code, status, headers, body, err = curl("-x", proxy(), "--cacert", root(),
                                                "https://x.blocked.test:%d/" % W["blocked"].port)
        self.assertEqual((code, status), (0, 403), err)
        self.assertIn(b'id="category">malware<', body)
        self.assertIn(b'id="rule">block-malware<', body)
        self.assertEqual(W["blocked"].stats["connections"], before)  # the origin was never contacted
        # /metrics counts decisions by action and category.
        metrics = curl("http://127.0.0.1:%d/metrics" % W["vigil"].admin_port)[3].decode()
        self.assertIn("# TYPE vigil_decisions_total counter", metrics)
        self.assertRegex(metrics, r'vigil_decisions_total\{kind="transaction",action="block",category="malware"\} [1-9]')

    def test_bypass_category_is_spliced_with_the_origins_own_certificate(self):
        url = "https://www.bank.test:%d/hello" % W["bank"].port
        # The origin's own certificate: trusted through the test public CA, not Vigil's root.
        code, status, headers, body, err = curl("-x", proxy(), "--cacert", W["pki"].ca_pem, url)
        self.assertEqual((code, status, body), (0, 200, b"hello from bank"), err)
        code, status, headers, body, err = curl("-x", proxy(), "--cacert", root(), url)
        self.assertEqual(code, 60, err)  # curl: peer certificate cannot be authenticated
        p = subprocess.run(["openssl", "s_client", "-proxy", "127.0.0.1:%d" % W["vigil"].port, "-connect",
                            "www.bank.test:%d" % W["bank"].port, "-servername", "www.bank.test"],
                           input="", capture_output=True, text=True, timeout=20)
        self.assertIn("issuer=O = Vigil tests, CN = Test Public Root", p.stdout)

    def test_warn_then_continue_then_allowed(self):
        url = "http://warn.test:%d/hello" % W["plain"].port
        code, status, headers, body, err = curl("-x", proxy(), url)
        self.assertEqual(status, 403)
        self.assertIn("X-Vigil-Reason: warn", headers)
        link = body.decode().split('id="continue" href="')[1].split('"')[0].replace("&amp;", "&")
        self.assertTrue(link.startswith(url + "?vigil-continue="), link)
        code, status, headers, body, err = curl("-x", proxy(), link)
        self.assertEqual(status, 302)
        self.assertIn("Location: " + url, headers)
        code, status, headers, body, err = curl("-x", proxy(), url)
        self.assertEqual((status, body), (200, b"hello from plain"))
        # A forged token is refused.
        code, status, headers, body, err = curl("-x", proxy(), url + "?vigil-continue=9999999999.deadbeef")
        self.assertEqual(status, 403)
        self.assertIn("X-Vigil-Reason: bad_continue_token", headers)


class GrantTest(unittest.TestCase):
    """Continue on a warn page gives a grant (a signed cookie) that outlives the gateway process and
    holds on any gateway with the same warn key; before, grants lived in one process's memory."""

    def gateway(self, *extra):
        return Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
            "--rules", W["db"], "--set", "proxy.allow_private_destinations=true"] + list(extra))

    def test_grant_survives_a_restart_and_another_gateway_and_never_reaches_the_origin(self):
        key = os.path.join(W["dir"], "warn.key")  # beside the CA folder, made by the first start
        self.assertTrue(os.path.exists(key))
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        url = "http://warn.test:%d/headers" % W["plain"].port
        jar = os.path.join(W["dir"], "grant-jar")
        a = self.gateway()
        try:
            code, status, headers, body, err = curl("-x", a.proxy, "-c", jar, "-b", jar, url)
            self.assertEqual(status, 403)
            link = body.decode().split('id="continue" href="')[1].split('"')[0].replace("&amp;", "&")
            code, status, headers, body, err = curl("-x", a.proxy, "-c", jar, "-b", jar, link)
            self.assertEqual(status, 302)
            self.assertRegex(headers, r"(?i)set-cookie: vigil_grant=\d+\.[0-9a-f]{64}; Path=/; Max-Age=\d+; HttpOnly")
        finally:
            a.stop()
        b = self.gateway()  # a new process (or another gateway sharing the key file)
        try:
            code, status, headers, body, err = curl("-x", b.proxy, "-b", jar, "-H", "Cookie: site=1", url)
            self.assertEqual(status, 200, body[:300])
            seen = json.loads(body)
            self.assertNotIn("vigil_grant", seen.get("cookie", ""))  # for the gateway only
            self.assertIn("site=1", seen.get("cookie", ""))
        finally:
            b.stop()
        other_key = os.path.join(W["dir"], "other.key")
        c = self.gateway("--set", 'inspect.warn_key_file="%s"' % other_key)  # a rotated key voids grants
        try:
            code, status, headers, body, err = curl("-x", c.proxy, "-b", jar, url)
            self.assertEqual(status, 403)
            self.assertIn("X-Vigil-Reason: warn", headers)
        finally:
            c.stop()
        os.chmod(other_key, 0o644)
        p = subprocess.run([VIGIL, "--check-config", "--ca-dir", W["ca"], "--set",
                            'inspect.warn_key_file="%s"' % other_key], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("readable or writable by others", p.stderr)


class PagesTest(unittest.TestCase):
    def test_branded_block_page_with_request_access_and_plain_warning(self):
        logo = os.path.join(W["dir"], "logo.svg")
        with open(logo, "w") as f:
            f.write('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
            "--rules", W["db"], "--set", "proxy.allow_private_destinations=true",
            "--set", 'pages.organisation="Acme <IT>"', "--set", 'pages.logo_file="%s"' % logo,
            "--set", 'pages.help_url="https://help.acme.example/proxy"',
            "--set", 'pages.request_access_url="https://it.acme.example/ask?site={url}&ref={transaction}"'])
        try:
            url = "http://x.blocked.test:%d/a?b=1" % W["plain"].port
            code, status, headers, body, err = curl("-x", v.proxy, url)
            page = body.decode()
            self.assertEqual(status, 403)
            self.assertIn('<strong id="organisation">Acme &lt;IT&gt;</strong>', page)
            self.assertIn('src="data:image/svg+xml;base64,', page)
            txid = re.search(r'id="transaction">([0-9a-f-]{36})<', page).group(1)
            self.assertIn('href="https://it.acme.example/ask?site=%s&amp;ref=%s"'
                          % (urllib.parse.quote(url, safe=""), txid), page)
            self.assertIn('<a id="help" href="https://help.acme.example/proxy">contact Acme &lt;IT&gt;</a>', page)
            code, status, headers, body, err = curl("-x", v.proxy, "http://warn.test:%d/hello" % W["plain"].port)
            self.assertEqual(status, 403)
            self.assertIn("X-Vigil-Reason: warn", headers)
            self.assertNotIn("<dt>Status</dt>", body.decode())
            self.assertNotIn("request-access", body.decode())
        finally:
            v.stop()


    def test_template_folder_overrides_the_pages(self):
        site = os.path.join(W["dir"], "site")
        tdir = os.path.join(site, "templates")
        os.makedirs(tdir)
        with open(os.path.join(tdir, "block.html"), "w") as f:
            f.write("<!doctype html><title>{{title}}</title><h1 id=custom>{{organisation}} stopped {{address}}</h1>"
                    "<p id=why>{{reason}}</p>{{#request_access_url}}<a id=ask href=\"{{request_access_url}}\">ask</a>"
                    "{{/request_access_url}}<p>Quote <b id=ref>{{reference}}</b></p>")
        with open(os.path.join(tdir, "page.html"), "w") as f:
            f.write("<p id=fallback>{{action}}: {{title}}{{#status}} ({{status}}){{/status}}</p><dl>{{details}}</dl>")
        # The folder is named relative to the configuration file, wherever vigil starts.
        with open(os.path.join(site, "vigil.toml"), "w") as f:
            f.write('[pages]\norganisation = "Acme"\ntemplate_dir = "templates"\n'
                    'request_access_url = "https://it.acme.example/ask?site={url}"\n')
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
            "--config", os.path.join(site, "vigil.toml"), "--rules", W["db"],
            "--set", "proxy.allow_private_destinations=true"])
        try:
            url = "http://x.blocked.test:%d/a?b=1&c='2'" % W["plain"].port
            code, status, headers, body, err = curl("-x", v.proxy, url)
            page = body.decode()
            self.assertEqual(status, 403)
            self.assertIn("<h1 id=custom>Acme stopped http://x.blocked.test:%d/a?b=1&amp;c=&#39;2&#39;</h1>"
                          % W["plain"].port, page)
            txid = re.search(r"X-Vigil-Transaction: ([0-9a-f-]{36})", headers).group(1)
            self.assertIn("<b id=ref>%s</b>" % txid, page)
            self.assertIn('<a id=ask href="https://it.acme.example/ask?site=http%3A%2F%2Fx.blocked.test', page)
            self.assertNotIn("Vigil secure web gateway", page)  # nothing of the built-in page
            # No warn.html: page.html stands in, without a status code on a warning.
            code, status, headers, body, err = curl("-x", v.proxy, "http://warn.test:%d/hello" % W["plain"].port)
            self.assertIn("<p id=fallback>warn: ", body.decode())
            self.assertNotIn("(403)", body.decode())
            self.assertIn("<dt>Reference</dt>", body.decode())
        finally:
            v.stop()
        # A mistake in a template stops the gateway at load, naming the file and line.
        with open(os.path.join(tdir, "block.html"), "a") as f:
            f.write("\n<p>{{titel}}</p>")
        p = subprocess.run([VIGIL, "--check-config", "--config", os.path.join(site, "vigil.toml"), "--ca-dir", W["ca"]],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("pages.template_dir: %s: line 2: unknown variable {{titel}}" % os.path.join(tdir, "block.html"),
                      p.stderr)
        os.remove(os.path.join(tdir, "block.html"))
        with open(os.path.join(tdir, "blok.html"), "w") as f:
            f.write("<p>{{title}}</p>")
        p = subprocess.run([VIGIL, "--check-config", "--config", os.path.join(site, "vigil.toml"), "--ca-dir", W["ca"]],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("blok.html: not a page Vigil knows (block.html, warn.html", p.stderr)


def slow_signatures(path, n=300):
    """n case-insensitive signatures with a Latin-1 letter: each runs as RE2 alone, a pass of its
    own over every buffer, so together they scan slowly (the admission check's case)."""
    sigs = [{"name": "slow-%d" % i, "target": "response_body", "pattern": "(?i)caf\\xe9[0-9]{1,3}x%d" % i,
             "action": "block", "severity": "high"} for i in range(n)]
    with open(path, "w") as f:
        json.dump({"format": "vigil-rules/1", "signatures": sigs}, f)


class ScanCostTest(unittest.TestCase):
    def test_slow_signatures_are_refused_unless_forced_and_compiled_once(self):
        db = os.path.join(W["dir"], "cost.db")
        run([RULES, "--db", db, "init"])
        p = subprocess.run([RULES, "--db", db, "add", "signature", "fine", "--target", "response_body",
                            "--pattern", r"(?i)\bshell_exec\s*\(", "--scan-floor", "1000000"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("scan cost: 1 response_body signature scan the built-in sample at", p.stdout)
        self.assertIn("below the floor of 1000000 MB/s; the slowest: fine", p.stderr)
        self.assertIn("Nothing was written", p.stderr)
        self.assertIn("ruleset version: 0", run([RULES, "--db", db, "stats"]).stdout)
        # At the default floor the same signature is cheap: written, with its cost.
        out = run([RULES, "--db", db, "add", "signature", "fine", "--target", "response_body",
                   "--pattern", r"(?i)\bshell_exec\s*\("]).stdout
        self.assertIn("fine alone: ", out)
        # Many RE2-alone signatures scan below 50 MB/s: refused, named; --force writes them.
        slow = os.path.join(W["dir"], "slow.json")
        slow_signatures(slow)
        p = subprocess.run([RULES, "--db", db, "import", slow], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("300 run as RE2 alone", p.stdout)
        self.assertIn("below the floor of 50.0 MB/s", p.stderr)
        self.assertIn("slow-", p.stderr)
        self.assertIn("ruleset version: 1", run([RULES, "--db", db, "stats"]).stdout)
        p = subprocess.run([RULES, "--db", db, "import", slow, "--force"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("warning: response_body signatures would scan at", p.stderr)
        self.assertIn("ruleset version: 2", run([RULES, "--db", db, "stats"]).stdout)
        # Taking one away is never refused, although the rest is still below the floor.
        run([RULES, "--db", db, "disable", "signature", "slow-7"])
        run([RULES, "--db", db, "remove", "signature", "slow-8"])
        run([RULES, "--db", db, "enable", "signature", "slow-7", "--force"])
        # What was compiled for the write is kept with the rules, for the gateway and `test`.
        import sqlite3
        con = sqlite3.connect(db)
        self.assertGreaterEqual(con.execute("SELECT count(*) FROM compiled").fetchone()[0], 1)
        con.close()
        out = run([RULES, "--db", db, "test", "--url", "http://x.test/", "--cost"]).stdout
        self.assertIn("scan cost: response_body 300 signatures", out)

    def test_a_body_over_its_scan_budget_follows_on_error(self):
        db = os.path.join(W["dir"], "budget.db")
        run([RULES, "--db", db, "init"])
        slow = os.path.join(W["dir"], "slow-budget.json")
        slow_signatures(slow)
        run([RULES, "--db", db, "import", slow, "--force"])
        url = "http://plain.test:%d/text/8000000" % W["plain"].port
        for on_error in ("block", "allow"):
            with self.subTest(on_error=on_error):
                v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_args=[
                    "--rules", db, "--set", "proxy.allow_private_destinations=true",
                    "--set", "inspect.scan_budget_ms=50", "--set", 'inspect.on_error="%s"' % on_error])
                try:
                    code, got, headers, body, err = curl("-x", v.proxy, url)
                    if on_error == "block":
                        # A 403 page while the head is still held, else the transfer cut short.
                        self.assertTrue(got == 403 and b"scan-budget" in body or len(body) < 8000000, headers)
                        self.assertIn("took longer than its budget", v.read_log())
                    else:
                        self.assertEqual(got, 200, headers)
                        self.assertEqual(len(body), 8000000)
                    self.assertEqual(v.metric("scan_over_budget"), 1)
                finally:
                    v.stop()


class ReloadTest(unittest.TestCase):
    def test_rules_replaced_20_times_under_load(self):
        stop = threading.Event()
        results = {"ok": 0, "blocked": 0, "failed": []}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy()}))

        def load():
            while not stop.is_set():
                try:
                    with opener.open("http://toggle.test:%d/hello" % W["plain"].port, timeout=10) as r:
                        r.read()
                        results["ok"] += 1
                except urllib.error.HTTPError as e:
                    e.read()
                    if e.code == 403:
                        results["blocked"] += 1
                    else:
                        results["failed"].append(e.code)
                except Exception as e:  # a dropped connection is a failure
                    results["failed"].append(repr(e))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(20):
            if i % 2 == 0:
                vr("add", "host", "toggle.test", "--category", "malware")
            else:
                vr("remove", "host", "toggle.test")
            W["vigil"].proc.send_signal(signal.SIGHUP)
            time.sleep(0.25)
        # Ends allowed (20 is even): the last swap must have taken effect.
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(results["failed"], [])
        self.assertGreater(results["ok"], 0)
        self.assertGreater(results["blocked"], 0)
        code, status, headers, body, err = curl("-x", proxy(), "http://toggle.test:%d/hello" % W["plain"].port)
        self.assertEqual(status, 200)
        vr("add", "host", "toggle.test", "--category", "malware")
        W["vigil"].proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        code, status, headers, body, err = curl("-x", proxy(), "http://toggle.test:%d/hello" % W["plain"].port)
        self.assertEqual(status, 403)


class RulesToolTest(unittest.TestCase):
    def test_bad_import_leaves_database_unchanged(self):
        before = vr("export").stdout
        history = vr("history").stdout
        bad = os.path.join(W["dir"], "bad.json")
        with open(bad, "w") as f:
            json.dump({"format": "vigil-rules/1", "categories": [{"name": "new-cat"}],
                       "hosts": [{"pattern": "fine.example", "category": "new-cat"}],
                       "signatures": [{"name": "broken", "target": "response_body", "pattern": "(unclosed"}]}, f)
        p = vr("import", bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('signature "broken": invalid RE2 pattern "(unclosed": missing )', p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        self.assertEqual(vr("export").stdout, before)
        self.assertEqual(vr("history").stdout, history)

    def test_export_import_export_is_identical(self):
        first = vr("export").stdout
        path = os.path.join(W["dir"], "export.json")
        with open(path, "w") as f:
            f.write(first)
        other = os.path.join(W["dir"], "copy.db")
        run([RULES, "--db", other, "init"])
        run([RULES, "--db", other, "import", path])
        self.assertEqual(run([RULES, "--db", other, "export"]).stdout, first)

    def test_list_formats_import(self):
        d = os.path.join(W["dir"], "lists")
        os.makedirs(os.path.join(d, "ut1", "gambling"))
        os.makedirs(os.path.join(d, "ut1", "jobsearch"))
        files = {
            "hosts.txt": "# blocklist\n0.0.0.0 ads.one.example\n127.0.0.1 localhost\n0.0.0.0 ads.two.example\n",
            "domains.txt": "tracker.example\n# comment\nmetrics.example\n",
            "adblock.txt": "[Adblock Plus 2.0]\n! comment\n||adserver.example^\n||cdn.example^$third-party\n"
                           "@@||allowed.example^\n/banner/*\n",
            "ut1/gambling/domains": "casino.example\npoker.example\n",
            "ut1/gambling/urls": "lottery.example/tickets\n",
            "ut1/jobsearch/domains": "jobs.example\n",
        }
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        other = os.path.join(W["dir"], "lists.db")
        run([RULES, "--db", other, "init"])
        run([RULES, "--db", other, "import", os.path.join(d, "hosts.txt"), "--format", "hosts", "--category", "ads"])
        run([RULES, "--db", other, "import", os.path.join(d, "domains.txt"), "--format", "domains",
             "--category", "trackers"])
        run([RULES, "--db", other, "import", os.path.join(d, "adblock.txt"), "--format", "adblock",
             "--category", "ads"])
        run([RULES, "--db", other, "import", os.path.join(d, "ut1"), "--format", "ut1"])
        data = json.loads(run([RULES, "--db", other, "export"]).stdout)
        hosts = {h["pattern"]: h["category"] for h in data["hosts"]}
        self.assertEqual(hosts, {
            "ads.one.example": "ads", "ads.two.example": "ads", ".tracker.example": "trackers",
            ".metrics.example": "trackers", ".adserver.example": "ads", ".cdn.example": "ads",
            ".casino.example": "gambling", ".poker.example": "gambling", ".jobs.example": "jobsearch"})
        self.assertEqual([u["category"] for u in data["url_patterns"]], ["gambling"])

        def verdict(url):
            out = run([RULES, "--db", other, "test", "--url", url, "--json"]).stdout
            return json.loads(out)

        run([RULES, "--db", other, "add", "policy", "no-gambling", "--action", "block", "--category", "gambling"])
        self.assertEqual(verdict("https://www.casino.example/")["action"], "block")
        self.assertEqual(verdict("https://casino.example/")["action"], "block")
        self.assertEqual(verdict("https://notcasino.example/")["action"], "allow")  # label-anchored
        self.assertEqual(verdict("http://lottery.example/tickets/today")["action"], "block")
        self.assertEqual(verdict("http://lottery.example/other")["action"], "allow")

    def test_writes_show_their_diff_and_versions_can_be_diffed_and_rolled_back(self):
        # Before: history was raw JSON cut with an ellipsis, and there was no diff or rollback.
        db = os.path.join(W["dir"], "versions.db")
        run([RULES, "--db", db, "init"])
        run([RULES, "--db", db, "--actor", "alice", "import", DEFAULT])
        v1 = 1  # the import
        out = run([RULES, "--db", db, "--actor", "bob", "add", "policy", "p1", "--action", "block",
                   "--category", "gambling"]).stdout
        self.assertIn("ruleset version 1 -> 2: 1 added, 0 removed, 0 changed", out)
        self.assertIn("+ policy p1: action block", out)
        out = run([RULES, "--db", db, "--actor", "bob", "disable", "policy", "p1"]).stdout
        self.assertIn("~ policy p1: enabled: true -> false", out)
        out = run([RULES, "--db", db, "diff", str(v1), "3"]).stdout
        self.assertIn("ruleset version 1 -> 3: 1 added, 0 removed, 0 changed", out)
        changes = json.loads(run([RULES, "--db", db, "diff", "1", "--json"]).stdout)
        self.assertEqual([(c["op"], c["kind"], c["key"]) for c in changes], [("+", "policy", "p1")])
        out = run([RULES, "--db", db, "--actor", "carol", "rollback", "1"]).stdout
        self.assertIn("rolled back to the rules of version 1 as version 4", out)
        self.assertIn("- policy p1", out)
        self.assertEqual(json.loads(run([RULES, "--db", db, "diff", "1", "4", "--json"]).stdout), [])
        table = run([RULES, "--db", db, "history"]).stdout.splitlines()
        self.assertTrue(table[0].startswith("ID"), table[0])
        self.assertIn("carol", table[1])
        self.assertIn("rollback to version 1", table[1])
        self.assertNotIn("…", "\n".join(table))  # nothing cut into raw JSON
        self.assertIn("policy p1", table[3])
        rows = json.loads(run([RULES, "--db", db, "history", "--json"]).stdout)
        self.assertEqual(rows[0]["actor"], "carol")
        p = subprocess.run([RULES, "--db", db, "rollback", "999"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("version 999 is not kept", p.stderr)

    def test_import_counts_skipped_lines_and_lenient_mode(self):
        # Before: skipped lines vanished without a count, and one odd line refused a whole list.
        lst = os.path.join(W["dir"], "public-list.txt")
        with open(lst, "w") as f:
            f.write("[Adblock Plus 2.0]\n! a public list\n||ads.good.example^\n||track.good.example^$third-party\n"
                    "@@||allowed.example^\nexample.com##.banner\n/banner/*\n||bad..example^\n")
        db = os.path.join(W["dir"], "lenient.db")
        run([RULES, "--db", db, "init"])
        before = run([RULES, "--db", db, "export"]).stdout
        p = subprocess.run([RULES, "--db", db, "import", lst, "--format", "adblock", "--category", "ads"],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)  # strict by default: the bad line refuses the file
        self.assertIn("public-list.txt:8:", p.stderr)
        self.assertEqual(run([RULES, "--db", db, "export"]).stdout, before)  # nothing written
        out = run([RULES, "--db", db, "import", lst, "--format", "adblock", "--category", "ads", "--lenient"]).stdout
        self.assertIn("imported 1 categories, 2 hosts", out)
        self.assertIn("lines: 2 used, 4 skipped", out)
        self.assertIn("1 skipped: an Adblock exception (@@), not a host block", out)
        self.assertIn("1 skipped: a cosmetic (element-hiding) rule", out)
        self.assertIn("1 skipped: a URL or pattern rule, not a host block", out)
        self.assertIn("1 skipped: not a valid host name", out)
        self.assertIn("e.g. %s:8: not a valid host name: ||bad..example^" % lst, out)

    def test_csv_import_and_rule_management(self):
        other = os.path.join(W["dir"], "csv.db")
        csv = os.path.join(W["dir"], "rules.csv")
        with open(csv, "w") as f:
            f.write("kind,name,pattern,category,target,action,severity,validator,priority,match_category,"
                    "description\n"
                    "category,social,,,,,,,,,Social networks\n"
                    "host,,\"*.social.example\",social,,,,,,,\n"
                    "signature,secret-word,(?i)xyzzy,,response_body,block,low,,,,\"a word, quoted\"\n"
                    "policy,block-social,,,,block,,,5,social,\n")
        run([RULES, "--db", other, "init"])
        out = run([RULES, "--db", other, "import", csv]).stdout
        self.assertIn("1 categories, 1 hosts, 0 URL patterns, 1 signatures, 1 policies", out)
        body = os.path.join(W["dir"], "body.txt")
        with open(body, "w") as f:
            f.write("the XYZZY word")

        def verdict(*args):
            return json.loads(run([RULES, "--db", other, "test", "--json"] + list(args)).stdout)

        v = verdict("--url", "https://a.social.example/")
        self.assertEqual((v["action"], v["rule"], v["category"]), ("block", "block-social", "social"))
        self.assertEqual(verdict("--url", "https://social.example/")["action"], "allow")  # *. is below only
        v = verdict("--url", "https://x.example/", "--response-body", body)
        self.assertEqual((v["action"], v["rule"]), ("block", "secret-word"))
        run([RULES, "--db", other, "disable", "signature", "secret-word"])
        self.assertEqual(verdict("--url", "https://x.example/", "--response-body", body)["action"], "allow")
        run([RULES, "--db", other, "enable", "signature", "secret-word"])
        self.assertEqual(verdict("--url", "https://x.example/", "--response-body", body)["action"], "block")
        run([RULES, "--db", other, "remove", "policy", "block-social"])
        self.assertEqual(verdict("--url", "https://a.social.example/")["action"], "allow")
        p = subprocess.run([RULES, "--db", other, "remove", "policy", "block-social"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('no policy "block-social"', p.stderr)
        history = run([RULES, "--db", other, "history"]).stdout.splitlines()
        self.assertEqual(len(history), 5)  # the header; import, disable, enable, remove
        self.assertIn("remove", history[1])
        stats = run([RULES, "--db", other, "stats"]).stdout
        self.assertIn("ruleset version: 4", stats)
        listing = run([RULES, "--db", other, "list", "--kind", "signature"]).stdout
        self.assertIn("secret-word  response_body block low", listing)

    def test_typos_and_condition_less_policies_are_refused_and_change_nothing(self):
        # `--categroy` once added "p1 block when always": every site blocked for everyone.
        db = os.path.join(W["dir"], "typo.db")
        run([RULES, "--db", db, "init"])
        before = subprocess.run([RULES, "--db", db, "export"], capture_output=True, text=True, check=True).stdout
        for args, expect in (
                (["add", "policy", "p1", "--action", "block", "--categroy", "gambling"], "did you mean --category?"),
                (["add", "policy", "p1", "--action", "block"], "give --all"),
                (["list", "--category", "X"], "unknown option --category for list"),
                (["add", "host", "x.test", "--category", "news", "--priority", "3"], "unknown option --priority"),
                (["history", "--limt", "3"], "did you mean --limit?")):
            with self.subTest(args=args):
                p = subprocess.run([RULES, "--db", db] + args, capture_output=True, text=True)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(expect, p.stderr)
        after = subprocess.run([RULES, "--db", db, "export"], capture_output=True, text=True, check=True).stdout
        self.assertEqual(before, after)
        run([RULES, "--db", db, "add", "policy", "everyone", "--action", "monitor", "--all"])
        self.assertIn("everyone", subprocess.run([RULES, "--db", db, "list", "--kind", "policy"], capture_output=True,
                                                 text=True, check=True).stdout)

    def test_not_a_rule_database(self):
        junk = os.path.join(W["dir"], "junk.db")
        with open(junk, "w") as f:
            f.write("this is not sqlite" * 100)
        p = subprocess.run([RULES, "--db", junk, "list"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
