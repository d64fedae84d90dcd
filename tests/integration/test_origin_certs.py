"""Origin certificate verification beyond OpenSSL's defaults, through the real gateway: each
certificate below is accepted by OpenSSL's verifier (or rejected by a check we turned on) and
must be refused with its reason code on the block page, in the audit record and in /metrics,
while a correct chain passes."""

import html
import http.client
import json
import os
import re
import ssl
import subprocess
import time
import unittest

from harness import BLOCK, Origin, ParentProxy, Pki, Vigil, VIGIL_CA, curl, free_port, make_workdir, remove_workdir, run
from origin_pki import leaf, intermediate, ca_chain, cross_signed, root, CaDb, LoopbackHttp, stapling_origin, s_server

W = {}


CASES = {
    "clientonly.test": ("malformed", "not valid for a web server"),  # OpenSSL's purpose check
    "shop.co.uk": ("malformed", "over a public suffix"),
    "critical.test": ("malformed", "critical extension that is not understood"),
    "constrained.test": ("untrusted", "name constraints"),
    "pathlen.test": ("malformed", "path length constraint exceeded"),
    "deep.test": ("malformed", "certificate chain too long"),
    "future.test": ("not_yet_valid", "not valid yet"),
    "weak.test": ("weak_crypto", "weak cryptography"),  # RSA-1024 leaf
    # Structure that RFC 5280 fixes and browser-grade verifiers enforce (issue 22).
    "ncnoncrit.test": ("malformed", "name constraints are not marked critical"),
    "ncempty.test": ("malformed", "name no permitted or excluded names"),
    "ncleaf.test": ("malformed", "carries name constraints, which only a CA may"),
    "policynoncrit.test": ("malformed", "policy constraints are not marked critical"),
    "anyeku.test": ("malformed", "any extended key usage beside serverAuth"),
    "criteku.test": ("malformed", "marks its extended key usage critical"),
    "badaia.test": ("malformed", "Authority Information Access extension that cannot be read"),
    # A CA certificate in the leaf's place: Chrome (since 107) and Firefox refuse it, so do we.
    "caleaf.test": ("malformed", "is a CA certificate, not a server"),
    # 1,100 names under 1,100 constraints: past OpenSSL's work limit for name constraints.
    "manynames.test": ("invalid", "more names or name constraints than the verifier checks"),
}
# Trust anchors a browser-grade verifier refuses: each root is trusted, a leaf under it served.
ANCHORS = {
    "akinokeyid.test": ("malformed", "authority key identifier has no key identifier",
                        {"ext_lines": ["authorityKeyIdentifier=issuer:always"]}),
    # OpenSSL's purpose check already refuses it (our own anchor check is the second line).
    "rootclientonly.test": ("malformed", "not valid for a web server", {"ext_lines": ["extendedKeyUsage=clientAuth"]}),
    "rsaodd.test": ("malformed", "not a whole number of bytes", {"newkey": ("rsa:2052",)}),
    "dsaroot.test": ("weak_crypto", "trust anchor (root certificate) has a DSA key", {"newkey": None}),
}


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    inter, inter_key = intermediate(pki, "nc-inter", "excluded;DNS:constrained.test")
    permit, permit_key = intermediate(pki, "nc-permit", "permitted;DNS:permitted.test")
    W["anchor"], anchor_key = intermediate(pki, "anchor-inter")  # trusted by itself in StrictnessTest
    ncnon, ncnon_key = intermediate(pki, "nc-noncrit", "permitted;DNS:ncnoncrit.test", nc_critical=False)
    ncempty, ncempty_key = intermediate(pki, "nc-empty", ext_lines=["2.5.29.30=critical,DER:3000"])
    polnon, polnon_key = intermediate(pki, "pol-noncrit", ext_lines=["policyConstraints=requireExplicitPolicy:0"])
    many, many_key = intermediate(pki, "nc-many", ",".join("excluded;DNS:x%d.other.test" % i for i in range(1100)))
    certs = {
        "good.test": leaf(pki, "good", "DNS:good.test"),
        "noeku.test": leaf(pki, "noeku", "DNS:noeku.test", eku=None),
        "clientonly.test": leaf(pki, "clientonly", "DNS:clientonly.test", eku="clientAuth"),
        "cnmismatch.test": leaf(pki, "cnmismatch", "DNS:cnmismatch.test", cn="other.test"),
        "shop.co.uk": leaf(pki, "psl", "DNS:*.co.uk"),
        "critical.test": leaf(pki, "critical", "DNS:critical.test", ext_lines=["1.3.6.1.4.1.99999.2=critical,ASN1:NULL"]),
        "constrained.test": leaf(pki, "constrained", "DNS:constrained.test", ca=(inter, inter_key), chain_with=inter),
        # Its CN is outside the permitted names, its SAN inside: browsers look at the SAN only.
        "www.permitted.test": leaf(pki, "permitted", "DNS:www.permitted.test", cn="elsewhere.example",
                                   ca=(permit, permit_key), chain_with=permit),
        "anchored.test": leaf(pki, "anchored", "DNS:anchored.test", ca=(W["anchor"], anchor_key), chain_with=W["anchor"]),
        "cncase.test": leaf(pki, "cncase", "DNS:cncase.test", cn="CNCase.test"),
        "ncnoncrit.test": leaf(pki, "ncnoncrit", "DNS:ncnoncrit.test", ca=(ncnon, ncnon_key), chain_with=ncnon),
        "ncempty.test": leaf(pki, "ncempty", "DNS:ncempty.test", ca=(ncempty, ncempty_key), chain_with=ncempty),
        "ncleaf.test": leaf(pki, "ncleaf", "DNS:ncleaf.test", ext_lines=["nameConstraints=critical,permitted;DNS:ncleaf.test"]),
        "policynoncrit.test": leaf(pki, "policynoncrit", "DNS:policynoncrit.test", ca=(polnon, polnon_key),
                                   chain_with=polnon),
        "anyeku.test": leaf(pki, "anyeku", "DNS:anyeku.test", eku="serverAuth,anyExtendedKeyUsage"),
        "criteku.test": leaf(pki, "criteku", "DNS:criteku.test", eku="critical,serverAuth"),
        "manynames.test": leaf(pki, "manynames", ",".join(["DNS:manynames.test"] +
                                                          ["DNS:n%d.manynames.test" % i for i in range(1100)]),
                               ca=(many, many_key), chain_with=many),
        "caleaf.test": leaf(pki, "caleaf", "DNS:caleaf.test", basic="critical,CA:TRUE"),
        "badaia.test": leaf(pki, "badaia", "DNS:badaia.test", ext_lines=["1.3.6.1.5.5.7.1.1=DER:3003020100"]),
    }
    # One CA key, two certificates: under the test root with name constraints that exclude the
    # leaf's name (the copy the origin sends first), and under another root without them.
    alt_root, alt_root_key = root(pki, "alt-path-root")
    cross_key, cross_csr = pki.path("altcross.key"), pki.path("altcross.csr")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", cross_key,
         "-out", cross_csr, "-subj", "/CN=Alt Path Cross CA"])
    copies = []
    for name, (ca_pem, ca_key), nc in (("altcross-nc", (pki.ca_pem, pki.ca_key), "excluded;DNS:altpath.test"),
                                       ("altcross-free", (alt_root, alt_root_key), None)):
        ext, pem = pki.path(name + ".ext"), pki.path(name + ".pem")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
            if nc:
                f.write("nameConstraints=critical,%s\n" % nc)
        run(["openssl", "x509", "-req", "-in", cross_csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
             "-out", pem, "-days", "5", "-extfile", ext])
        copies.append(pem)
    both = pki.path("altcross-both.pem")
    with open(both, "w") as out:
        for pem in copies:
            with open(pem) as f:
                out.write(f.read())
    certs["altpath.test"] = leaf(pki, "altpath", "DNS:altpath.test", ca=(copies[0], cross_key), chain_with=both)
    # A loop the origin sends first: X (issued by Y) and Y (issued by X), then X' (the same
    # X, issued by the trusted root). The leaf's first candidate issuer is the looping X.
    loop_keys = {}
    for name in ("loopx", "loopy"):
        k, c = pki.path(name + ".key"), pki.path(name + ".csr")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", k,
             "-out", c, "-subj", "/CN=Loop %s" % name[-1].upper()])
        loop_keys[name] = (k, c)
    loop_ext = pki.path("loop.ext")
    with open(loop_ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")

    def sign(subject, issuer_pem, issuer_key, out):
        run(["openssl", "x509", "-req", "-in", loop_keys[subject][1], "-CA", issuer_pem, "-CAkey", issuer_key,
             "-CAcreateserial", "-out", out, "-days", "5", "-extfile", loop_ext])
        return out

    # Y self-signed first (to have a certificate to sign X with), then X by Y, Y by X, X' by the root.
    y0 = pki.path("loopy0.pem")
    run(["openssl", "x509", "-req", "-in", loop_keys["loopy"][1], "-signkey", loop_keys["loopy"][0], "-out", y0,
         "-days", "5", "-extfile", loop_ext])
    x_by_y = sign("loopx", y0, loop_keys["loopy"][0], pki.path("loopx-by-y.pem"))
    y_by_x = sign("loopy", x_by_y, loop_keys["loopx"][0], pki.path("loopy-by-x.pem"))
    x_by_root = sign("loopx", pki.ca_pem, pki.ca_key, pki.path("loopx-by-root.pem"))
    loop_chain = pki.path("loop-chain.pem")
    with open(loop_chain, "w") as out:
        for pem in (x_by_y, y_by_x, x_by_root):
            with open(pem) as f:
                out.write(f.read())
    certs["loop.test"] = leaf(pki, "loop", "DNS:loop.test", ca=(x_by_y, loop_keys["loopx"][0]), chain_with=loop_chain)
    W["alt_trusted"] = pki.path("alt-trusted.pem")
    with open(W["alt_trusted"], "w") as out:
        for pem in (pki.ca_pem, alt_root):
            with open(pem) as f:
                out.write(f.read())
    anchors = os.path.join(d, "anchors.pem")
    with open(anchors, "w") as bundle:
        for host, (_, _, how) in ANCHORS.items():
            if how.get("newkey", ()) is None:  # DSA: parameters first
                params = pki.path("dsa-params.pem")
                run(["openssl", "dsaparam", "-out", params, "2048"])
                how = {"newkey": ("dsa:" + params,)}
            pem, key = root(pki, host.split(".")[0] + "-root", **how)
            certs[host] = leaf(pki, host.split(".")[0], "DNS:" + host, ca=(pem, key))
            with open(pem) as f:
                bundle.write(f.read())
    W["anchors"] = anchors
    # an intermediate with pathlen:0 that signed another intermediate; a chain of ten
    pathlen_chain, pathlen_ca = ca_chain(pki, "pathlen", 2, pathlen_first=0)
    certs["pathlen.test"] = leaf(pki, "pathlen", "DNS:pathlen.test", ca=pathlen_ca, chain_with=pathlen_chain)
    deep_chain, deep_ca = ca_chain(pki, "deep", 10)
    certs["deep.test"] = leaf(pki, "deep", "DNS:deep.test", ca=deep_ca, chain_with=deep_chain)
    swapped_chain, swapped_ca = ca_chain(pki, "swapped", 2, swapped=True)  # sent root-most first
    certs["swapped.test"] = leaf(pki, "swapped", "DNS:swapped.test", ca=swapped_ca, chain_with=swapped_chain)
    cross_pem, cross_key, new_root = cross_signed(pki, d)
    certs["cross.test"] = (cross_pem, cross_key)
    trusted = os.path.join(d, "trusted.pem")  # the test "public" CA and the new root
    with open(trusted, "w") as out:
        for f in (pki.ca_pem, new_root):
            with open(f) as src:
                out.write(src.read())
    db = CaDb(pki, os.path.join(d, "db-main"))
    certs["future.test"] = db.issue("future.test", dates=("-startdate", "20991231000000Z", "-enddate", "21000101000000Z"))
    # s_server at security level 0 serves what Python's ssl refuses to load
    W["servers"] = {"weak.test": s_server(*db.issue("weak.test", newkey=("rsa:1024",)), "-cipher", "DEFAULT:@SECLEVEL=0"),
                    # A P-192 or DSA key: no signature the gateway accepts, so no handshake at all.
                    "p192.test": s_server(*db.issue("p192.test", newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-192")),
                                          "-cipher", "DEFAULT:@SECLEVEL=0")}
    dsa_params = pki.path("dsa-leaf-params.pem")
    run(["openssl", "dsaparam", "-out", dsa_params, "2048"])
    W["servers"]["dsa.test"] = s_server(*db.issue("dsa.test", newkey=("dsa:" + dsa_params,)), "-cipher", "ALL:@SECLEVEL=0",
                                        "-tls1_2")
    W["origins"] = {host: Origin(host, *files) for host, files in certs.items()}
    W["plain"] = Origin("plain")  # plain HTTP, for the stray-bytes test
    W["stapling"] = {host: stapling_origin(pki, d, host, revoke) for host, revoke in
                     (("revoked.test", True), ("stapled.test", False))}
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test\n127.0.0.1 shop.co.uk\n")
    W["audit"] = os.path.join(d, "audit.db")
    ports = ",".join([str(o.port) for o in W["origins"].values()] +
                     [str(p) for _, p in list(W["stapling"].values()) + list(W["servers"].values())])
    W["hosts"], W["trusted"] = hosts, trusted
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=trusted, extra_args=[
        "--audit", W["audit"], "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%s]" % ports])


def tearDownModule():
    if "vigil" in W and W["vigil"].proc.poll() is None:
        W["vigil"].stop()
    for o in list(W.get("origins", {}).values()) + ([W["plain"]] if "plain" in W else []):
        o.close()
    for proc, _ in list(W.get("stapling", {}).values()) + list(W.get("servers", {}).values()):
        proc.terminate()
        proc.wait()
    remove_workdir(W["dir"])


def fetch(host, path="/hello"):
    port = W["origins"][host].port if host in W["origins"] else W["servers"][host][1]
    return curl("-x", W["vigil"].proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                "https://%s:%d%s" % (host, port, path))


def gateway(*settings, extra_ca=None, env=()):
    """Another gateway over the same origins, with other [tls] settings."""
    ports = ",".join(str(o.port) for o in W["origins"].values())
    return Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=extra_ca, wrapper=(["env"] + list(env)) if env else (),
                 extra_args=["--set", "proxy.allow_private_destinations=true",
                             "--set", "proxy.allowed_connect_ports=[%s]" % ports] +
                 [x for kv in settings for x in ("--set", kv)])


def fetch_via(v, host):
    return curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                "https://%s:%d/hello" % (host, W["origins"][host].port))


class AnchorTest(unittest.TestCase):
    def test_trust_anchors_a_browser_grade_verifier_refuses(self):
        v = gateway(extra_ca=W["anchors"])
        try:
            for host, (code, words, _) in ANCHORS.items():
                with self.subTest(host=host):
                    c, status, headers, body, err = fetch_via(v, host)
                    self.assertEqual(status, 502, headers)
                    self.assertIn("X-Vigil-Reason: %s" % code, headers)
                    self.assertIn(words, html.unescape(body.decode()))
        finally:
            v.stop()


class PathBuildingTest(unittest.TestCase):
    def test_a_path_forbidden_by_name_constraints_gives_way_to_the_cross_signed_copy(self):
        # Only the constrained copy's root is trusted: refused, with the reason.
        code, status, headers, body, err = fetch("altpath.test")
        self.assertEqual(status, 502, headers)
        self.assertIn("name constraints", html.unescape(body.decode()))
        # Both roots trusted: OpenSSL's first path (the constrained copy) fails, the other holds.
        v = gateway(extra_ca=W["alt_trusted"])
        try:
            code, status, headers, body, err = fetch_via(v, "altpath.test")
            self.assertEqual((code, status, body), (0, 200, b"hello from altpath.test"), err + headers)
        finally:
            v.stop()


    def test_a_first_path_that_loops_gives_way_to_the_one_to_the_root(self):
        code, status, headers, body, err = fetch("loop.test")
        self.assertEqual((code, status, body), (0, 200, b"hello from loop.test"), err + headers)


class WeakKeyTest(unittest.TestCase):
    def test_p192_and_dsa_leaves_are_refused_in_words_that_name_a_weak_key(self):
        for host in ("p192.test", "dsa.test"):
            with self.subTest(host=host):
                code, status, headers, body, err = fetch(host)
                self.assertEqual(status, 502, headers)
                page = html.unescape(body.decode())
                self.assertIn("a certificate whose key is too weak (such as DSA or P-192)", page)
                self.assertNotIn("sslv3", page)


class StrictnessTest(unittest.TestCase):
    def test_browser_accepts_what_chromium_does_and_strict_refuses_it(self):
        # No extendedKeyUsage (RFC 5280: any use); a subject CN that no SAN repeats; a CN outside
        # the name constraints whose SAN is inside them.
        for host in ("noeku.test", "cnmismatch.test", "www.permitted.test", "cncase.test"):
            code, status, headers, body, err = fetch(host)
            self.assertEqual((code, status, body), (0, 200, b"hello from " + host.encode()), err + headers)
        v = gateway('tls.strictness="strict"', extra_ca=W["trusted"])
        try:
            for host, words in (("noeku.test", "no extended key usage"),
                                ("cnmismatch.test", "in its subject but not in its subjectAltName"),
                                ("cncase.test", "differs in letter case")):
                code, status, headers, body, err = fetch_via(v, host)
                self.assertEqual(status, 502, headers)
                self.assertIn(words, html.unescape(body.decode()))
        finally:
            v.stop()

    def test_a_trusted_intermediate_is_an_anchor_and_the_system_store_can_be_left_out(self):
        # Only the intermediate is trusted, not the root above it: the path ends there.
        v = gateway("tls.system_store=false", extra_ca=W["anchor"])
        try:
            code, status, headers, body, err = fetch_via(v, "anchored.test")
            self.assertEqual((code, status), (0, 200), err + headers)
            code, status, headers, body, err = fetch_via(v, "good.test")  # under the root: not trusted
            self.assertEqual(status, 502, headers)
            self.assertIn("X-Vigil-Reason: untrusted", headers)
        finally:
            v.stop()
        # The system store is OpenSSL's default file; here the test CA stands in for it.
        for system_store, status in (("true", 200), ("false", 502)):
            with self.subTest(system_store=system_store):
                v = gateway("tls.system_store=%s" % system_store, extra_ca=W["anchor"],
                            env=["SSL_CERT_FILE=" + W["trusted"], "SSL_CERT_DIR=/nonexistent"])
                try:
                    self.assertEqual(fetch_via(v, "good.test")[1], status)
                finally:
                    v.stop()
        p = subprocess.run([os.path.join(os.path.dirname(VIGIL_CA), "vigil"), "--check-config", "--ca-dir", W["ca"],
                            "--set", "tls.system_store=false"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no origin could be trusted", p.stderr)

    def test_max_chain_depth_is_a_key(self):
        code, status, headers, body, err = fetch("deep.test")  # ten intermediates: over the default 8
        self.assertEqual(status, 502)
        v = gateway("tls.max_chain_depth=12", extra_ca=W["trusted"])
        try:
            code, status, headers, body, err = fetch_via(v, "deep.test")
            self.assertEqual((code, status), (0, 200), err + headers)
        finally:
            v.stop()


class OriginCertificateTest(unittest.TestCase):
    def test_a_correct_chain_passes(self):
        code, status, headers, body, err = fetch("good.test")
        self.assertEqual((code, status), (0, 200), err)

    def test_a_cross_signed_intermediate_from_an_untrusted_root_still_chains_to_the_trusted_copy(self):
        code, status, headers, body, err = fetch("cross.test")
        self.assertEqual((code, status, body), (0, 200, b"hello from cross.test"), err + headers)

    def test_the_next_connection_to_an_origin_resumes_its_tls_session(self):
        before = W["vigil"].metric("origin_resumed")
        # The origin closes each connection, so after the (at most two) idle pooled connections
        # are used up, every client connection needs a new origin connection: three of them.
        for _ in range(5):
            code, status, headers, body, err = fetch("good.test", "/hello-close")
            self.assertEqual((code, status), (0, 200), err)
        self.assertGreaterEqual(W["vigil"].metric("origin_resumed") - before, 2)

    def test_a_new_client_connection_reuses_an_idle_origin_connection(self):
        origin = W["origins"]["good.test"]
        time.sleep(0.2)
        connections, reused = origin.stats["connections"], W["vigil"].metric("origin_reused")
        for _ in range(6):  # six client connections, one after another
            code, status, headers, body, err = fetch("good.test")
            self.assertEqual((code, status, body), (0, 200, b"hello from good.test"), err)
        # At most one new origin connection per worker thread (the test runs two); the rest reused.
        self.assertLessEqual(origin.stats["connections"] - connections, 2)
        self.assertGreaterEqual(W["vigil"].metric("origin_reused") - reused, 4)

    def test_a_connection_with_bytes_past_the_response_is_never_handed_to_another_client(self):
        for path in ("/hello-extra", "/hello-late-extra", "/hello-extra", "/hello-late-extra"):
            code, status, headers, body, err = fetch("good.test", path)
            self.assertEqual((code, status, body), (0, 200, b"hello from good.test"), err)
            time.sleep(0.3)
            for _ in range(3):
                code, status, headers, body, err = fetch("good.test")
                self.assertEqual((code, status, body), (0, 200, b"hello from good.test"), err)

    def test_stray_bytes_after_a_body_never_answer_the_next_request(self):
        # The origin sends a second, unasked-for response in the same write as the first. Its
        # bytes must mark the connection as not reusable, both for the next request on the same
        # client connection and for another client, wherever they wait: with a 5-byte body they
        # came in with the head and sit in Vigil's read buffer; after 300,000 bytes (the body is
        # read straight into the relay buffer, exactly Content-Length bytes) they stay in the TLS
        # stream's buffers, not on the socket. Reused, they would answer the next request.
        # Plain HTTP first (the cache-tests suite met this case there: a short response's extra
        # bytes answered the client's next request), then HTTPS through the bump.
        base = "http://plain.test:%d" % W["plain"].port
        for n in (5, 300000):
            conn = http.client.HTTPConnection("127.0.0.1", W["vigil"].port, timeout=20)
            conn.request("GET", base + "/bytes-extra/%d" % n)
            self.assertEqual(conn.getresponse().read(), (BLOCK * (n // len(BLOCK) + 1))[:n])
            for _ in range(2):
                conn.request("GET", base + "/hello")
                self.assertEqual(conn.getresponse().read(), b"hello from plain")
            conn.close()
        ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
        port = W["origins"]["good.test"].port
        for n in (5, 300000, 5, 300000):
            conn = http.client.HTTPSConnection("good.test", port, context=ctx, timeout=20)
            conn.set_tunnel("good.test", port)
            conn.host, conn.port = "127.0.0.1", W["vigil"].port
            conn.request("GET", "/bytes-extra/%d" % n)
            r = conn.getresponse()
            self.assertEqual(r.read(), (BLOCK * (n // len(BLOCK) + 1))[:n])
            for _ in range(2):
                conn.request("GET", "/hello")
                r = conn.getresponse()
                self.assertEqual(r.read(), b"hello from good.test")
            conn.close()
            for _ in range(2):
                code, status, headers, body, err = fetch("good.test")
                self.assertEqual((code, status, body), (0, 200, b"hello from good.test"), err)

    def test_intermediates_sent_in_the_wrong_order_still_chain(self):
        code, status, headers, body, err = fetch("swapped.test")
        self.assertEqual((code, status, body), (0, 200, b"hello from swapped.test"), err + headers)

    def test_each_rejection_has_its_reason_on_the_page_in_the_audit_and_in_metrics(self):
        for host, (reason_code, words) in CASES.items():
            with self.subTest(host=host):
                code, status, headers, body, err = fetch(host)
                self.assertEqual((code, status), (0, 502), err)
                self.assertIn("X-Vigil-Reason: " + reason_code, headers)
                page = body.decode()
                self.assertIn(words, page)
                # Who is at fault, the names the certificate is for, its dates; never OpenSSL's words.
                self.assertIn("<dt>At fault</dt><dd>the site: its certificate, not your network", page)
                self.assertRegex(page, r"<dt>Valid</dt><dd>\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d</dd>")
                self.assertNotIn("SSL routines", page)
                if host == "future.test":
                    self.assertIn("<dt>Certificate for</dt><dd>future.test</dd>", page)
        metrics = curl("http://127.0.0.1:%d/metrics" % W["vigil"].admin_port)[3].decode()
        self.assertRegex(metrics, r'vigil_origin_cert_errors_total\{reason="malformed"\} ([5-9]|\d\d)')
        self.assertRegex(metrics, r'vigil_origin_cert_errors_total\{reason="weak_crypto"\} [1-9]')
        self.assertRegex(metrics, r'vigil_origin_cert_errors_total\{reason="not_yet_valid"\} [1-9]')
        self.assertRegex(metrics, r'vigil_origin_cert_errors_total\{reason="untrusted"\} [1-9]')
        for _ in range(50):  # the writer commits within a moment
            rows = [r for r in audit_rows(W["audit"]) if r.get("origin_cert") not in ("", "ok")]
            seen = {r["host"]: r for r in rows}
            if set(CASES) <= seen.keys():
                break
            time.sleep(0.1)
        for host, (reason_code, words) in CASES.items():
            with self.subTest(host=host):
                self.assertEqual(seen[host]["origin_cert"], reason_code)
                self.assertIn(words, seen[host]["reason"])


def fingerprint(pem):
    out = run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"]).stdout
    return out.strip().split("=", 1)[1]


def audit_rows(path):
    p = subprocess.run([os.path.join(os.path.dirname(VIGIL_CA), "vigil-audit"), "--db", path, "query",
                        "--format", "json", "--limit", "1000"], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


class StapledOcspTest(unittest.TestCase):
    """tls.revocation = staple (the default): a stapled "revoked" is refused, "good" passes."""

    def get(self, host):
        return curl("-x", W["vigil"].proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                    "https://%s:%d/" % (host, W["stapling"][host][1]))

    def test_stapled_revoked_is_refused_and_stapled_good_passes(self):
        code, status, headers, body, err = self.get("revoked.test")
        self.assertEqual((code, status), (0, 502), err)
        self.assertIn("X-Vigil-Reason: revoked", headers)
        self.assertIn("stapled OCSP response says so", body.decode())
        code, status, headers, body, err = self.get("stapled.test")
        self.assertEqual((code, status), (0, 200), err + headers)


class PolicyTest(unittest.TestCase):
    """tls.origin_errors = warn, and tls.origin_exceptions by error class or pinned certificate."""

    @classmethod
    def setUpClass(cls):
        pki = W["pki"]
        d = os.path.join(W["dir"], "policy")
        os.makedirs(d)
        cls.origins = {
            "expired.test": Origin("expired", *pki.expired_leaf("p-expired", "expired.test")),
            "intranet.test": Origin("intranet", *pki.self_signed_leaf("p-intranet", "intranet.test")),
            "pinned.test": Origin("pinned", *pki.self_signed_leaf("p-pinned", "pinned.test")),
            "pinwrong.test": Origin("pinwrong", *pki.self_signed_leaf("p-pinwrong", "pinwrong.test")),
        }
        pin = fingerprint(pki.path("p-pinned.pem"))
        cls.audit = os.path.join(d, "audit.db")
        hosts = os.path.join(d, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 *.test\n")
        exceptions = ('[{host = "intranet.test", allow = ["self_signed"]}, {host = "pinned.test", pin_sha256 = "%s"}, '
                      '{host = "pinwrong.test", pin_sha256 = "%s"}]' % (pin.lower().replace(":", ""), "AB" * 32))
        cls.vigil = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
            "--audit", cls.audit, "--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%s]" % ",".join(str(o.port) for o in cls.origins.values()),
            "--set", 'tls.origin_errors={expired = "warn", untrusted = "block"}',
            "--set", "tls.origin_exceptions=" + exceptions])

    @classmethod
    def tearDownClass(cls):
        cls.vigil.stop()
        for o in cls.origins.values():
            o.close()

    def get(self, host, path="/hello"):
        return curl("-x", self.vigil.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                    "https://%s:%d%s" % (host, self.origins[host].port, path))

    def test_exception_by_class_and_by_pin_is_accepted_and_audited(self):
        for host in ("intranet.test", "pinned.test"):
            with self.subTest(host=host):
                code, status, headers, body, err = self.get(host)
                self.assertEqual((code, status, body), (0, 200, b"hello from %s" % host.split(".")[0].encode()), err)
        code, status, headers, body, err = self.get("pinwrong.test")  # a pin that does not match: no exception
        self.assertEqual(status, 502)
        self.assertIn("X-Vigil-Reason: self_signed", headers)
        rows = {}
        for _ in range(50):  # the writer commits within a moment
            rows = {r["host"]: r for r in audit_rows(self.audit) if r["kind"] == "transaction"}
            if {"intranet.test", "pinned.test", "pinwrong.test"} <= rows.keys():
                break
            time.sleep(0.1)
        self.assertEqual(rows["intranet.test"]["origin_cert"], "self_signed (accepted by tls.origin_exceptions)")
        # A connection that was let through is never resumed later (which would skip the check).
        for host in ("intranet.test", "pinned.test"):
            self.get(host)
        self.assertEqual(self.vigil.metric("origin_resumed"), 0)
        self.assertEqual(self.vigil.metric("origin_reused"), 0)  # nor handed to the next client
        self.assertEqual(rows["pinned.test"]["origin_cert"], "pinned (accepted by tls.origin_exceptions)")
        self.assertEqual(rows["pinwrong.test"]["origin_cert"], "self_signed")

    def test_warn_then_continue_then_allowed_and_audited(self):
        code, status, headers, body, err = self.get("expired.test", "/hello")
        self.assertEqual(status, 403, err)
        self.assertIn("X-Vigil-Reason: warn", headers)
        page = body.decode()
        self.assertIn("certificate has expired", page)
        link = html.unescape(re.search(r'id="continue" href="([^"]+)"', page).group(1))
        self.assertIn("expired.test", link)
        code, status, headers, body, err = curl("-x", self.vigil.proxy, "--cacert", os.path.join(W["ca"], "root.pem"), link)
        self.assertEqual((status, body), (200, b"hello from expired"), err)
        # A new connection from the same client is let through for warn_duration.
        code, status, headers, body, err = self.get("expired.test", "/hello")
        self.assertEqual((status, body), (200, b"hello from expired"), err)
        # A forged or foreign token is refused.
        code, status, headers, body, err = self.get("expired.test", "/x?vigil-continue=1.abc")
        self.assertEqual(status, 403)
        # The audit log has the warning shown and the user's decision.
        for _ in range(50):
            rows = [r for r in audit_rows(self.audit) if r["host"] == "expired.test" and r["kind"] == "transaction"]
            if len(rows) >= 4:
                break
            time.sleep(0.1)
        decisions = [(r["action"], r["origin_cert"]) for r in reversed(rows)]
        self.assertEqual(decisions[0], ("warn", "expired"))
        accepted = "expired (accepted by the user, who continued past the warning)"
        self.assertIn(("allow", accepted), decisions[1:])


def der(pem):
    return subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], check=True, capture_output=True).stdout


class FetchingTest(unittest.TestCase):
    """An incomplete chain completed over AIA caIssuers, and tls.revocation = ocsp, against
    loopback servers: the missing intermediate and an OCSP responder (`openssl ocsp`)."""

    @classmethod
    def setUpClass(cls):
        pki = W["pki"]
        d = os.path.join(W["dir"], "fetching")
        os.makedirs(d)
        inter, inter_key = intermediate(pki, "aia-inter")
        cls.db = CaDb(pki, os.path.join(d, "db"))
        with open(inter, "rb") as f:
            inter_pem = f.read()
        cls.http = LoopbackHttp({"/inter.der": der(inter), "/inter.pem": inter_pem,
                                 "/garbage": b"this is not a certificate"}, cls.db)
        base = "http://127.0.0.1:%d" % cls.http.port
        aia = lambda path: ["authorityInfoAccess=caIssuers;URI:%s%s" % (base, path)]
        ocsp = lambda url: ["authorityInfoAccess=OCSP;URI:%s" % url]
        cls.origins = {
            # leaf only, issued by an intermediate the origin does not send
            "aia.test": Origin("aia", *leaf(pki, "aia", "DNS:aia.test", ca=(inter, inter_key), ext_lines=aia("/inter.der"))),
            "aiapem.test": Origin("aiapem", *leaf(pki, "aiapem", "DNS:aiapem.test", ca=(inter, inter_key),
                                                  ext_lines=aia("/inter.pem"))),
            "aiabad.test": Origin("aiabad", *leaf(pki, "aiabad", "DNS:aiabad.test", ca=(inter, inter_key),
                                                  ext_lines=aia("/garbage"))),
            "ocspgood.test": Origin("ocspgood", *cls.db.issue("ocspgood.test", ocsp(base + "/ocsp"))),
            "ocsprevoked.test": Origin("ocsprevoked", *cls.db.issue("ocsprevoked.test", ocsp(base + "/ocsp"), revoke=True)),
            "ocspdown.test": Origin("ocspdown", *cls.db.issue("ocspdown.test", ocsp("http://127.0.0.1:%d/ocsp" % free_port()))),
        }
        cls.audit = os.path.join(d, "audit.db")
        hosts = os.path.join(d, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 *.test\n")
        cls.vigil = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
            "--audit", cls.audit, "--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%s]" % ",".join(str(o.port) for o in cls.origins.values()),
            "--set", 'tls.revocation="ocsp"', "--set", "timeouts.fetch=3"])

    @classmethod
    def tearDownClass(cls):
        cls.vigil.stop()
        for o in cls.origins.values():
            o.close()
        cls.http.close()

    def get(self, host):
        return curl("-x", self.vigil.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                    "https://%s:%d/hello" % (host, self.origins[host].port))

    def test_an_incomplete_chain_is_completed_from_the_aia_url_once(self):
        for host, path in (("aia.test", "/inter.der"), ("aiapem.test", "/inter.pem")):
            with self.subTest(host=host):
                code, status, headers, body, err = self.get(host)
                self.assertEqual((code, status, body), (0, 200, b"hello from " + host.split(".")[0].encode()), err + headers)
        # The intermediate is pooled: later connections (any host it issued for) fetch nothing.
        code, status, headers, body, err = self.get("aia.test")
        self.assertEqual(status, 200, err)
        self.assertEqual(self.http.hits.get("/inter.der"), 1)
        self.assertLessEqual(self.http.hits.get("/inter.pem", 0), 1)

    def test_an_aia_url_that_gives_no_certificate_is_refused_with_the_reason(self):
        code, status, headers, body, err = self.get("aiabad.test")
        self.assertEqual((code, status), (0, 502), err)
        self.assertIn("X-Vigil-Reason: untrusted", headers)
        self.assertIn("could not be fetched from http://127.0.0.1:%d/garbage" % self.http.port, html.unescape(body.decode()))
        self.get("aiabad.test")  # a failure is remembered, not fetched again at once
        self.assertEqual(self.http.hits.get("/garbage"), 1)

    def test_ocsp_responder_revoked_is_refused_good_passes_and_answers_are_cached(self):
        code, status, headers, body, err = self.get("ocsprevoked.test")
        self.assertEqual((code, status), (0, 502), err)
        self.assertIn("X-Vigil-Reason: revoked", headers)
        self.assertIn("OCSP responder says so", body.decode())
        before = self.http.hits.get("/ocsp", 0)
        for _ in range(3):
            code, status, headers, body, err = self.get("ocspgood.test")
            self.assertEqual((code, status, body), (0, 200, b"hello from ocspgood"), err + headers)
        self.assertEqual(self.http.hits.get("/ocsp", 0), before + 1)  # one query, then the cache

    def test_an_unreachable_responder_is_allowed_by_default_and_says_so_in_the_audit(self):
        code, status, headers, body, err = self.get("ocspdown.test")
        self.assertEqual((code, status), (0, 200), err + headers)
        self.assertGreaterEqual(self.vigil.metric("ocsp_unknown"), 1)
        for _ in range(50):
            rows = [r for r in audit_rows(self.audit) if r["host"] == "ocspdown.test" and r["kind"] == "transaction"]
            if rows:
                break
            time.sleep(0.1)
        self.assertRegex(rows[0]["origin_cert"], r"^ok \(revocation unknown: the OCSP responder http://127\.0\.0\.1:\d+/ocsp "
                                                 r"could not be asked: connecting to 127\.0\.0\.1 failed")

    def test_aia_and_ocsp_fetches_go_through_the_parent_proxy(self):
        # The fetch host is a name only the parent can reach (Vigil's hosts file has *.test and
        # nothing resolves .invalid): a fetch that went direct would fail.
        pki = W["pki"]
        d = os.path.join(W["dir"], "fetching-parent")
        os.makedirs(d)
        inter, inter_key = intermediate(pki, "parent-inter")
        served = LoopbackHttp({"/inter.der": der(inter)}, self.db)
        parent = ParentProxy("egress")
        base = "http://fetch.invalid:%d" % served.port
        origins = {
            "viaaia.test": Origin("viaaia", *leaf(pki, "viaaia", "DNS:viaaia.test", ca=(inter, inter_key),
                                                  ext_lines=["authorityInfoAccess=caIssuers;URI:%s/inter.der" % base])),
            "viarevoked.test": Origin("viarevoked", *self.db.issue(
                "viarevoked.test", ["authorityInfoAccess=OCSP;URI:%s/ocsp" % base], revoke=True)),
        }
        hosts = os.path.join(d, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 *.test\n")
        v = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
            "--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%s]" % ",".join(str(o.port) for o in origins.values()),
            "--set", 'upstream.parents=[{ address = "127.0.0.1:%d", name = "egress" }]' % parent.port,
            "--set", 'tls.revocation="ocsp"', "--set", "timeouts.fetch=3"])
        try:
            def get(host):
                return curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                            "https://%s:%d/hello" % (host, origins[host].port))
            code, status, headers, body, err = get("viaaia.test")
            self.assertEqual((code, status, body), (0, 200, b"hello from viaaia"), err + headers)
            code, status, headers, body, err = get("viarevoked.test")
            self.assertEqual((code, status), (0, 502), err)
            self.assertIn("X-Vigil-Reason: revoked", headers)
        finally:
            rc, counters = v.stop()
            for o in origins.values():
                o.close()
            served.close()
            parent.kill()
        self.assertEqual(rc, 0)
        self.assertIn("GET %s/inter.der" % base, parent.targets)
        self.assertIn("POST %s/ocsp" % base, parent.targets)
        self.assertEqual((served.hits.get("/inter.der"), served.hits.get("/ocsp")), (1, 1))


if __name__ == "__main__":
    unittest.main()
