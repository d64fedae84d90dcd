"""One command-line grammar for the four tools (CLI11): every command and subcommand, found by
walking `--help`, refuses an unknown option with exit 2, names it, and changes nothing; every
one answers `--help`; a near miss gets "did you mean"."""

import hashlib
import os
import subprocess
import unittest

from harness import BIN_DIR, VIGIL_CA, Vigil, make_workdir, remove_workdir, run

RULES = os.path.join(BIN_DIR, "vigil-rules")
AUDIT = os.path.join(BIN_DIR, "vigil-audit")
VIGIL = os.path.join(BIN_DIR, "vigil")
W = {}


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "CLI Test"])
    W["rules"] = os.path.join(d, "rules.db")
    run([RULES, "--db", W["rules"], "init"])
    run([RULES, "--db", W["rules"], "add", "category", "news"])
    run([RULES, "--db", W["rules"], "add", "policy", "p", "--action", "block", "--category", "news"])
    # An audit log with records: a gateway started and stopped once.
    W["audit"] = os.path.join(d, "audit.db")
    Vigil(d, W["ca"], extra_args=["--audit", W["audit"]]).stop()


def tearDownModule():
    remove_workdir(W["dir"])


def state():
    """Every byte the tools could change: the CA folder, the rule and audit databases."""
    h = hashlib.sha256()
    paths = [W["rules"], W["audit"]]
    for root, _, files in os.walk(W["ca"]):
        paths += [os.path.join(root, f) for f in files]
    for path in sorted(paths):
        h.update(path.encode())
        with open(path, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


TOOLS = {
    "vigil": (VIGIL, lambda: []),
    "vigil-ca": (VIGIL_CA, lambda: []),
    "vigil-rules": (RULES, lambda: ["--db", W["rules"]]),
    "vigil-audit": (AUDIT, lambda: ["--db", W["audit"]]),
}


def subcommands(binary, path):
    """The subcommands `--help` lists for `path` (CLI11's "Subcommands:" section)."""
    out = subprocess.run([binary] + path + ["--help"], capture_output=True, text=True, timeout=10).stdout
    names, inside = [], False
    for line in out.splitlines():
        if line.startswith("Subcommands:"):
            inside = True
        elif inside and line.startswith("  ") and line.strip():
            names.append(line.split()[0])
        elif inside and not line.strip():
            inside = False
    return names


def commands(binary):
    """Every command path, from the tool itself down to each leaf."""
    out, todo = [], [[]]
    while todo:
        path = todo.pop()
        out.append(path)
        todo.extend(path + [s] for s in subcommands(binary, path))
    return out


class GrammarTest(unittest.TestCase):
    def test_every_command_refuses_an_unknown_option_and_changes_nothing(self):
        seen = 0
        for tool, (binary, base) in TOOLS.items():
            paths = commands(binary)
            self.assertTrue(tool == "vigil" or len(paths) > 5, (tool, paths))
            for path in paths:
                with self.subTest(tool=tool, command=path):
                    before = state()
                    p = subprocess.run([binary] + base() + path + ["--no-such-option", "1"], capture_output=True,
                                       text=True, timeout=20)
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertEqual(p.stdout, "")
                    self.assertIn("unknown option --no-such-option", p.stderr)
                    self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                    self.assertEqual(before, state())
                    seen += 1
        self.assertGreater(seen, 40)

    def test_every_command_has_help(self):
        for tool, (binary, _) in TOOLS.items():
            for path in commands(binary):
                with self.subTest(tool=tool, command=path):
                    p = subprocess.run([binary] + path + ["--help"], capture_output=True, text=True, timeout=10)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertIn("Usage: " + " ".join([tool] + path), p.stdout)

    def test_near_misses_are_named(self):
        for argv, expect in (
                ([RULES, "--db", W["rules"], "add", "policy", "p1", "--action", "block", "--categroy", "x"],
                 "unknown option --categroy for add policy; did you mean --category?"),
                ([RULES, "--db", W["rules"], "lsit"], "unknown command lsit; did you mean list?"),
                ([AUDIT, "--db", W["audit"], "query", "--usr", "bob"], "did you mean --user?"),
                ([AUDIT, "--db", W["audit"], "query", "--limit", "3", "--limit", "4"], "--limit is given more than once"),
                ([AUDIT, "--db", W["audit"], "stats", "--by", "hots"], "--by must be one of host, category"),
                ([VIGIL_CA, "shwo", "--dir", W["ca"]], "unknown command shwo; did you mean show?"),
                ([VIGIL_CA, "export", "--dir", W["ca"], "--format", "zip", "--out", "x"], "--format must be one of"),
                ([VIGIL, "--lisen", "127.0.0.1:0"], "unknown option --lisen; did you mean --listen?"),
                ([VIGIL, "--threads"], "--threads needs a value"),
                ([VIGIL, "stray"], "unexpected argument stray")):
            with self.subTest(argv=argv[1:]):
                before = state()
                p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(expect, p.stderr)
                self.assertEqual(before, state())

    def test_json_where_the_output_is_data(self):
        import json
        for argv in ([RULES, "--db", W["rules"], "list", "--json"], [RULES, "--db", W["rules"], "stats", "--json"],
                     [RULES, "--db", W["rules"], "history", "--json"], [RULES, "--db", W["rules"], "diff", "1", "--json"],
                     [RULES, "--db", W["rules"], "user", "list", "--json"],
                     [RULES, "--db", W["rules"], "group", "list", "--json"],
                     [RULES, "--db", W["rules"], "test", "--url", "https://example.com/", "--json"],
                     [AUDIT, "--db", W["audit"], "query", "--json"], [AUDIT, "--db", W["audit"], "show", "1", "--json"],
                     [AUDIT, "--db", W["audit"], "stats", "--by", "action", "--json"],
                     [AUDIT, "--db", W["audit"], "verify", "--json"], [VIGIL_CA, "show", "--dir", W["ca"], "--json"]):
            with self.subTest(argv=argv[1:]):
                out = run(argv).stdout
                json.loads(out)
        stats = json.loads(run([RULES, "--db", W["rules"], "stats", "--json"]).stdout)
        self.assertEqual((stats["version"], stats["categories"], stats["policies"]), (2, 1, 1))
        verified = json.loads(run([AUDIT, "--db", W["audit"], "verify", "--json"]).stdout)
        self.assertTrue(verified["verified"])
        self.assertGreaterEqual(verified["rows"], 2)


if __name__ == "__main__":
    unittest.main()
