#!/usr/bin/env python3
"""Builds the real-text corpora and the real rule sets the scanning benchmark uses.

Corpora (OUT/corpus/<kind>.bin, one document after another, and <kind>.idx, "offset length"
per document): JavaScript, HTML, JSON and CSS as web servers send them, from npm packages
(downloaded once into OUT/npm) and files on this Debian machine (`make bench` installs
python3-doc for its HTML). Random bytes are made by
the benchmark itself as the control.

Rule sets (OUT/sets/<name>.txt, one RE2 pattern per line):
- crs: the @rx patterns of the OWASP Core Rule Set (Debian package modsecurity-crs) that RE2
  accepts (the benchmark drops the ones it rejects and says how many);
- real1k, real10k: signatures shaped like the default ruleset's threat markers — PHP and Java
  functions, PowerShell cmdlets, shell commands, file paths, error strings, webshell-style call
  pairs — built from the Core Rule Set's own word lists, each with the context that makes it a
  threat marker rather than a word (a call, an assignment, a path, a command line).

Deterministic: the same machine and npm versions give the same files.
"""

import glob
import os
import random
import re
import subprocess
import sys
import tarfile

CRS = "/usr/share/modsecurity-crs/rules"
MiB = 1 << 20
TARGET = {"js": 32 * MiB, "html": 32 * MiB, "json": 32 * MiB, "css": 16 * MiB}
LOCAL = {
    "js": ["/usr/share/javascript", "/usr/share/nodejs", "/usr/lib/nodejs", "/usr/share/doc", "/usr/lib/python3"],
    "html": ["/usr/share/doc/python3.11", "/usr/share/doc", "/usr/share/gtk-doc", "/usr/share/javascript"],
    "json": ["/usr/share", "/usr/lib"],
    "css": ["/usr/share/javascript", "/usr/share/doc", "/usr/share"],
}
# Pinned npm packages: large real front-end code and style sheets.
NPM = {
    "js": ["typescript@5.3.3", "three@0.160.0", "lodash@4.17.21", "react-dom@18.2.0", "moment@2.29.4",
           "jquery@3.7.1", "d3@7.8.5", "vue@3.3.13", "echarts@5.4.3", "pdfjs-dist@4.0.269", "monaco-editor@0.45.0"],
    "css": ["bootswatch@5.3.2", "bootstrap@5.3.2", "bootstrap@4.6.2", "bootstrap@3.4.1", "bulma@0.9.4",
            "@fortawesome/fontawesome-free@6.5.1", "semantic-ui-css@2.5.0", "foundation-sites@6.8.1",
            "animate.css@4.1.1", "@primer/css@21.1.1", "tachyons@4.12.0", "uikit@3.17.11", "materialize-css@1.0.0",
            "spectre.css@0.5.9", "purecss@3.0.0", "@picocss/pico@1.5.10"],
    "json": ["@mdn/browser-compat-data@5.5.4", "cldr-dates-full@44.1.0", "cldr-numbers-full@44.1.0",
             "emoji-datasource@15.0.1", "cldr-localenames-full@44.1.0"],
    "html": ["typedoc@0.25.4"],
}
EXT = {"js": (".js", ".mjs"), "html": (".html", ".htm"), "json": (".json",), "css": (".css",)}


def local_files(kind):
    seen, out = set(), []
    for root in LOCAL[kind]:
        for dirpath, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                path = os.path.join(dirpath, f)
                if f.endswith(EXT[kind]) and os.path.isfile(path) and not os.path.islink(path):
                    real = os.path.realpath(path)
                    if real not in seen and 256 <= os.path.getsize(path) <= 8 * MiB:
                        seen.add(real)
                        out.append(path)
    return out


def npm_files(kind, cache):
    os.makedirs(cache, exist_ok=True)
    for pkg in NPM.get(kind, []):
        name = pkg.replace("@", "").replace("/", "-")
        done = os.path.join(cache, name + ".done")
        if not os.path.exists(done):
            r = subprocess.run(["npm", "pack", pkg, "--silent", "--pack-destination", cache], capture_output=True,
                               text=True, timeout=300)
            if r.returncode != 0:
                print("corpus: npm pack %s failed: %s" % (pkg, r.stderr.strip()[:200]), file=sys.stderr)
                continue
            with open(done, "w") as f:
                f.write(r.stdout.strip().splitlines()[-1])
        tgz = os.path.join(cache, open(done).read().strip())
        with tarfile.open(tgz) as t:
            for m in sorted(t.getmembers(), key=lambda m: m.name):
                if m.isfile() and m.name.endswith(EXT[kind]) and 256 <= m.size <= 8 * MiB:
                    yield m.name, t.extractfile(m).read()


def build_corpus(kind, out_dir, cache):
    data, index = bytearray(), []

    def add(blob):
        index.append((len(data), len(blob)))
        data.extend(blob)

    for _, blob in npm_files(kind, cache):
        if len(data) >= TARGET[kind]:
            break
        add(blob)
    for path in local_files(kind):
        if len(data) >= TARGET[kind]:
            break
        with open(path, "rb") as f:
            add(f.read())
    with open(os.path.join(out_dir, kind + ".bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(out_dir, kind + ".idx"), "w") as f:
        f.writelines("%d %d\n" % x for x in index)
    return len(data), len(index)


def crs_patterns():
    """The @rx operands of every SecRule, unquoted as ModSecurity reads them."""
    out = []
    for conf in sorted(glob.glob(os.path.join(CRS, "*.conf"))):
        text = open(conf, encoding="utf-8", errors="replace").read().replace("\\\n", " ")
        for m in re.finditer(r'SecRule\s+\S+\s+"((?:[^"\\]|\\.)*)"', text):
            op = m.group(1)
            if op.startswith("!"):
                op = op[1:]
            if not op.startswith("@rx "):
                continue
            pattern = op[4:].replace('\\"', '"')
            out.append(pattern)
    return out


def words(name):
    path = os.path.join(CRS, name)
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if line and not line.startswith("#") and len(line) >= 3:
            out.append(line)
    return out


def realistic(n, seed):
    """n signatures with the default ruleset's shape: a distinctive core and the context that
    makes it a threat marker. Cores come from the Core Rule Set's lists of real names."""
    rng = random.Random(seed)
    esc = re.escape
    php = words("php-function-names-933150.data") + words("php-function-names-933151.data")
    shell = words("unix-shell.data")
    ps = words("windows-powershell-commands.data")
    paths = words("lfi-os-files.data") + words("restricted-files.data")
    errors = words("php-errors.data") + words("sql-errors.data") + words("java-errors.data") + words("iis-errors.data")
    java = words("java-classes.data")
    fns = [w for w in php if re.fullmatch(r"[a-z_][a-z0-9_]{2,}", w)]
    cmds = sorted({w.rsplit("/", 1)[1] for w in shell if "bin/" in w and re.fullmatch(r"[a-z][a-z0-9_.-]+", w.rsplit("/", 1)[1])})
    shapes = [
        # A function called on request input: what a web shell does.
        lambda: r"(?i)\b%s\s*\(\s*\$_(GET|POST|REQUEST|COOKIE)\b" % esc(rng.choice(fns)),
        # A function handed a long encoded literal: the literal is a common word (join, split,
        # escape...), so real code hits it all the time and the context rarely follows.
        lambda: r"(?i)\b%s\s*\(\s*['\"][A-Za-z0-9+/=]{%d,}" % (esc(rng.choice(fns)), rng.choice((48, 64, 100))),
        # Two functions nested the way obfuscated droppers do it.
        lambda: r"(?i)\b%s\s*\(\s*%s\s*\(\s*['\"]" % (esc(rng.choice(fns)), esc(rng.choice(fns))),
        # A PowerShell cmdlet with the flags of a download cradle.
        lambda: r"(?i)\b%s\b[^\n]{0,80}\s-(enc|encodedcommand|nop|noni|w\s+hidden)\b" % esc(rng.choice(ps)),
        # A shell command whose output is piped to a shell.
        lambda: r"(?i)(^|[;&|`]\s*)%s\s+[^\n|;]{0,100}\|\s*(ba|z|da|k)?sh\b" % esc(rng.choice(cmds)),
        # A sensitive path reached by traversal.
        lambda: r"(?i)(\.\./|\.\.\\){2,}%s" % esc(rng.choice(paths).lstrip("/")),
        # A server error string leaking into a response.
        lambda: r"(?i)%s" % esc(rng.choice([e for e in errors if len(e) >= 16])),
        # A Java class used for deserialization or reflection gadgets.
        lambda: r"%s\s*[.(]" % esc(rng.choice(java)),
        # An eval of decoded data.
        lambda: r"(?i)\b(eval|assert|create_function)\s*\(\s*%s\s*\(" % esc(rng.choice(fns)),
    ]
    out, seen = [], set()
    while len(out) < n:
        p = rng.choice(shapes)()
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/bench-corpus"
    for d in ("corpus", "sets", "npm"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for kind in ("js", "html", "json", "css"):
        path = os.path.join(out, "corpus", kind + ".bin")
        if os.path.exists(path) and os.path.getsize(path) > 0:
            continue
        size, docs = build_corpus(kind, os.path.join(out, "corpus"), os.path.join(out, "npm"))
        print("corpus %-4s %6.1f MiB in %d documents" % (kind, size / MiB, docs))
    if not os.path.isdir(CRS):
        sys.exit("corpus: %s is missing: apt-get install modsecurity-crs" % CRS)
    sets = {"crs": crs_patterns(), "real1k": realistic(1000, 1), "real10k": realistic(10000, 2)}
    for name, patterns in sets.items():
        with open(os.path.join(out, "sets", name + ".txt"), "w") as f:
            f.writelines(p + "\n" for p in patterns if "\n" not in p)
        print("set %-8s %6d patterns" % (name, len(patterns)))


if __name__ == "__main__":
    main()
