"""Certificates and servers for the origin certificate tests, made with the openssl CLI: leaves
with chosen extensions, intermediates and chains (cross-signed, swapped), an OCSP responder's
database, a loopback HTTP server for AIA and OCSP URLs, an origin that staples, and
`openssl s_server` for handshakes Python's ssl module will not make."""

import http.server
import os
import socket
import subprocess
import tempfile
import threading
import time

from harness import free_port, run

def leaf(pki, name, san, cn=None, ext_lines=(), eku="serverAuth", ca=None, chain_with=None, basic="critical,CA:FALSE"):
    """A leaf signed by the public test CA (or `ca` = (pem, key)) with the given extensions.
    Returns (cert file, key file); with chain_with, the cert file holds leaf + that cert."""
    key, csr = pki.path(name + ".key"), pki.path(name + ".csr")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=" + (cn or san.split(",")[0].split(":", 1)[1])])
    ext = pki.path(name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=%s\nkeyUsage=critical,digitalSignature\n"
                "subjectAltName=%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % (basic, san))
        if eku:
            f.write("extendedKeyUsage=%s\n" % eku)
        for line in ext_lines:
            f.write(line + "\n")
    ca_pem, ca_key = ca or (pki.ca_pem, pki.ca_key)
    pem = pki.path(name + ".pem")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
         "-out", pem, "-days", "5", "-extfile", ext])
    if chain_with:
        with open(pem, "a") as out, open(chain_with) as extra:
            out.write(extra.read())
    return pem, key


def intermediate(pki, name, constraints=None, ext_lines=(), nc_critical=True):
    key, csr = pki.path(name + ".key"), pki.path(name + ".csr")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=Constrained Intermediate"])
    ext = pki.path(name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        if constraints:
            f.write("nameConstraints=%s%s\n" % ("critical," if nc_critical else "", constraints))
        for line in ext_lines:
            f.write(line + "\n")
    pem = pki.path(name + ".pem")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_pem, "-CAkey", pki.ca_key, "-CAcreateserial",
         "-out", pem, "-days", "5", "-extfile", ext])
    return pem, key


def root(pki, name, newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-256"), ext_lines=()):
    """A self-signed root with extra extension lines; returns (pem, key)."""
    key, csr, pem, ext = (pki.path(name + x) for x in (".key", ".csr", ".pem", ".ext"))
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n")
        for line in ext_lines:
            f.write(line + "\n")
    run(["openssl", "req", "-new", "-newkey", *newkey, "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/O=Vigil tests/CN=" + name])
    run(["openssl", "x509", "-req", "-in", csr, "-signkey", key, "-out", pem, "-days", "30", "-extfile", ext])
    return pem, key


def ca_chain(pki, name, length, pathlen_first=None, swapped=False):
    """`length` intermediates under the test CA, each signing the next (the first with
    pathlen `pathlen_first` if given). Returns (PEM file of the chain, leaf-most first unless
    `swapped`; (PEM, key) of the last)."""
    issuer = (pki.ca_pem, pki.ca_key)
    pems = []
    for i in range(length):
        key, csr, ext, pem = (pki.path("%s-%d%s" % (name, i, x)) for x in (".key", ".csr", ".ext", ".pem"))
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=%s %d" % (name, i)])
        with open(ext, "w") as f:
            pathlen = ",pathlen:%d" % pathlen_first if i == 0 and pathlen_first is not None else ""
            f.write("basicConstraints=critical,CA:TRUE%s\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % pathlen)
        run(["openssl", "x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1], "-CAcreateserial",
             "-out", pem, "-days", "5", "-extfile", ext])
        issuer = (pem, key)
        pems.append(pem)
    chain = pki.path(name + "-chain.pem")
    with open(chain, "w") as out:
        for pem in (pems if swapped else reversed(pems)):
            with open(pem) as src:
                out.write(src.read())
    return chain, issuer


def cross_signed(pki, d):
    """An intermediate that exists twice: self-signed as a trusted root ("new root") and
    cross-signed by an old root nobody trusts. The origin sends the cross-signed copy; the
    chain through the trusted copy must be found. Returns (leaf+cross chain, key, new root)."""
    old_key, old_pem = pki.path("old-root.key"), pki.path("old-root.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", old_key,
         "-out", old_pem, "-days", "5", "-subj", "/CN=Old Root", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    inter_key, new_root = pki.path("cross-inter.key"), pki.path("new-root.pem")
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", inter_key])
    run(["openssl", "req", "-x509", "-key", inter_key, "-out", new_root, "-days", "5", "-subj", "/CN=Cross Inter",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    csr, ext, cross = pki.path("cross-inter.csr"), pki.path("cross-inter.ext"), pki.path("cross-inter.pem")
    run(["openssl", "req", "-new", "-key", inter_key, "-out", csr, "-subj", "/CN=Cross Inter"])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", old_pem, "-CAkey", old_key, "-CAcreateserial", "-out", cross,
         "-days", "5", "-extfile", ext])
    pem, key = leaf(pki, "cross", "DNS:cross.test", ca=(new_root, inter_key), chain_with=cross)
    return pem, key, new_root


class CaDb:
    """An `openssl ca` database for the test public CA: issues leaves it can later revoke and
    answer OCSP requests about."""

    def __init__(self, pki, db):
        self.pki, self.db = pki, db
        os.makedirs(os.path.join(db, "new"))
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("3000\n")
        self.cnf = os.path.join(db, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s/new\nserial=%s/serial\n"
                    "default_md=sha256\npolicy=p\nunique_subject=no\ndefault_days=5\n[p]\ncommonName=supplied\n"
                    % (db, db, db))

    def issue(self, host, ext_lines=(), revoke=False, newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-256"), dates=()):
        """A leaf for `host`; `newkey` as openssl req takes it, `dates` e.g. ("-startdate", "...")."""
        key, csr, pem, ext = (os.path.join(self.db, host + n) for n in (".key", ".csr", ".pem", ".ext"))
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                    "subjectAltName=DNS:%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % host)
            for line in ext_lines:
                f.write(line + "\n")
        run(["openssl", "req", "-new", "-newkey", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + host])
        run(["openssl", "ca", "-batch", "-config", self.cnf, "-cert", self.pki.ca_pem, "-keyfile", self.pki.ca_key,
             "-in", csr, "-out", pem, "-notext", "-extfile", ext, *dates])
        if revoke:
            run(["openssl", "ca", "-config", self.cnf, "-cert", self.pki.ca_pem, "-keyfile", self.pki.ca_key, "-revoke", pem])
        return pem, key

    def respond(self, request_der):
        """The response `openssl ocsp` gives to a request, as a responder for this database."""
        with tempfile.TemporaryDirectory(dir=self.db) as t:
            req, resp = os.path.join(t, "req.der"), os.path.join(t, "resp.der")
            with open(req, "wb") as f:
                f.write(request_der)
            run(["openssl", "ocsp", "-index", os.path.join(self.db, "index.txt"), "-rsigner", self.pki.ca_pem,
                 "-rkey", self.pki.ca_key, "-CA", self.pki.ca_pem, "-reqin", req, "-respout", resp, "-ndays", "1"])
            with open(resp, "rb") as f:
                return f.read()


class LoopbackHttp:
    """A plain HTTP server on 127.0.0.1: GET serves `files` (path -> bytes), POST /ocsp answers
    OCSP requests through `openssl ocsp` for `ca_db`. Counts the requests per path."""

    def __init__(self, files, ca_db=None):
        outer = self
        self.hits = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, body, status=200):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                self.reply(*((files[self.path],) if self.path in files else (b"not found", 404)))

            def do_POST(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/ocsp" or self.headers.get("Content-Type") != "application/ocsp-request":
                    return self.reply(b"", 400)
                self.reply(ca_db.respond(body))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def stapling_origin(pki, d, host, revoke):
    """`openssl s_server` for `host` stapling an OCSP response from the test CA that says
    "revoked" (or "good"). Returns (process, port)."""
    db = os.path.join(d, "ocsp-" + host)
    os.makedirs(os.path.join(db, "new"))
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("2000\n")
    cnf = os.path.join(db, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s/new\nserial=%s/serial\n"
                "default_md=sha256\npolicy=p\nunique_subject=no\ndefault_days=5\n[p]\ncommonName=supplied\n" % (db, db, db))
    key, csr, pem, ext = (os.path.join(db, n) for n in ("leaf.key", "leaf.csr", "leaf.pem", "leaf.ext"))
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % host)
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", csr, "-subj", "/CN=" + host])
    run(["openssl", "ca", "-batch", "-config", cnf, "-cert", pki.ca_pem, "-keyfile", pki.ca_key, "-in", csr,
         "-out", pem, "-notext", "-extfile", ext])
    if revoke:
        run(["openssl", "ca", "-config", cnf, "-cert", pki.ca_pem, "-keyfile", pki.ca_key, "-revoke", pem])
    resp = os.path.join(db, "ocsp.der")
    run(["openssl", "ocsp", "-index", os.path.join(db, "index.txt"), "-rsigner", pki.ca_pem, "-rkey", pki.ca_key,
         "-CA", pki.ca_pem, "-issuer", pki.ca_pem, "-cert", pem, "-respout", resp, "-ndays", "1"])
    return s_server(pem, key, "-status_file", resp)


def s_server(pem, key, *extra):
    """`openssl s_server -www` on a free loopback port. Returns (process, port)."""
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-quiet", "-accept", "127.0.0.1:%d" % port, "-cert", pem,
                             "-key", key, "-www", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


# host -> (expected code, words on the page)
