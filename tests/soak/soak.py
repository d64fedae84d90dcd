#!/usr/bin/env python3
"""Soak test (not in CI): many distinct host names through the bump for a while, sampling
the gateway's resident memory. The certificate cache is bounded, so memory must level off
after warm-up. Run: python3 tests/soak/soak.py [--minutes 10] [--hosts 100000] [--procs 4 | --loadgen build/bin/vigil_loadgen]
[--bin build/bin]
With a sanitizer build (--bin build-asan/bin) LeakSanitizer reports leaks at exit."""

import argparse
import http.client
import json
import multiprocessing
import os
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def client(first, step, nhosts, deadline, origin_port, proxy_port, cafile, done, errors):
    """One client process: a new bumped connection to the next host name for each request."""
    ctx = ssl.create_default_context(cafile=cafile)
    i = first
    while time.time() < deadline:
        name = "h%d.soak.test" % (i % nhosts)
        i += step
        try:
            c = http.client.HTTPSConnection(name, origin_port, context=ctx, timeout=10)
            c.set_tunnel(name, origin_port)
            c.host, c.port = "127.0.0.1", proxy_port
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status != 200:
                raise RuntimeError(r.status)
            with done.get_lock():
                done.value += 1
        except Exception:
            with errors.get_lock():
                errors.value += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--hosts", type=int, default=100000)
    ap.add_argument("--procs", type=int, default=4, help="client processes")
    ap.add_argument("--loadgen", help="use this vigil_loadgen (C++) as the client instead of Python processes")
    ap.add_argument("--cache-entries", type=int, default=20000)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
    args = ap.parse_args()
    harness.BIN_DIR = args.bin
    harness.VIGIL = os.path.join(args.bin, "vigil")
    d = harness.make_workdir()
    ca = os.path.join(d, "ca")
    harness.run([os.path.join(args.bin, "vigil-ca"), "init", "--dir", ca])
    pki = harness.Pki(d)
    key, csr = pki._csr("wild", "*.soak.test")
    pem = pki.path("wild.pem")
    harness.run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_pem, "-CAkey", pki.ca_key, "-CAcreateserial",
                 "-out", pem, "-days", "5", "-extfile", pki._ext("wild", "DNS:*.soak.test")])
    # The origin is openssl s_server (C, one process): a Python origin's TLS handshakes were
    # the bottleneck, not the gateway.
    origin_port = harness.free_port()
    origin = subprocess.Popen(["openssl", "s_server", "-quiet", "-accept", "127.0.0.1:%d" % origin_port, "-cert", pem,
                               "-key", key, "-www"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.soak.test\n")
    v = harness.Vigil(d, ca, hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--set", "proxy.allow_private_destinations=true", "--set", "proxy.allowed_connect_ports=[%d]" % origin_port,
        "--set", "tls.cert_cache_entries=%d" % args.cache_entries, "--threads", "2"])
    deadline = time.time() + args.minutes * 60
    done = multiprocessing.Value("l", 0)
    errors = multiprocessing.Value("l", 0)
    if args.loadgen:
        # One C++ client: a new bumped connection per request, to the next of the distinct names.
        lg = subprocess.Popen([args.loadgen, "--url", "https://soak.test:%d/" % origin_port, "--proxy",
                               "127.0.0.1:%d" % v.port, "--cafile", os.path.join(ca, "root.pem"), "--mode", "newconn",
                               "--connections", "16", "--threads", "1", "--seconds", str(int(args.minutes * 60)),
                               "--distinct-hosts", str(args.hosts)], stdout=subprocess.PIPE, text=True)
        procs = []
    else:
        procs = [multiprocessing.Process(target=client, args=(k, args.procs, args.hosts, deadline, origin_port, v.port,
                                                              os.path.join(ca, "root.pem"), done, errors))
                 for k in range(args.procs)]
    for p in procs:
        p.start()
    counter = {"n": 0, "errors": 0}
    samples = []
    while time.time() < deadline:
        time.sleep(min(10, max(1, deadline - time.time())))
        if not args.loadgen:
            counter["n"], counter["errors"] = done.value, errors.value
        samples.append((time.time(), counter["n"], rss_kib(v.proc.pid)))
        print("t=%4.0fs requests=%7d errors=%d rss=%d KiB" % (samples[-1][0] - samples[0][0] + 10, samples[-1][1],
                                                            counter["errors"], samples[-1][2]), flush=True)
    for p in procs:
        p.join()
    counter["n"], counter["errors"] = done.value, errors.value
    if args.loadgen:
        out = lg.communicate()[0]
        print(out.strip())
        result = json.loads(out.strip().splitlines()[-1])
        counter["n"], counter["errors"] = result["requests"], result["errors"]
    rc, counters = v.stop(timeout=60)
    origin.terminate()
    origin.wait()
    print("exit code", rc, "certs minted", counters.get("certs_minted"), "log:", v.log_path)
    warm = samples[len(samples) // 3:]
    growth = warm[-1][2] - warm[0][2] if len(warm) > 1 else 0
    print("RSS after warm-up: %d -> %d KiB (growth %d KiB)" % (warm[0][2], warm[-1][2], growth))
    ok = rc == 0 and counter["errors"] == 0 and growth < 16 * 1024
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
