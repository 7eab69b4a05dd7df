#!/usr/bin/env python3
"""Layers only point down: fail on an include or call that does not go down the rank table.

Reads src/LAYERS (ranks, front ends that use only the public header, module-private headers),
then scans every C file under src/ and apps/:
  - `#include "module/..."`: the included module's rank must be below the includer's (two
    modules of one rank do not use each other), and a private header is for its module only;
  - calls: a `ps_`/`ps__` function or variable defined (non-static) in module X and named in
    module Y needs rank(X) < rank(Y);
  - a public-only front end may include no src/ header and name no `ps__` symbol, except the
    known ones listed in tests/layers/allowed.txt (to be removed, never added to);
  - docs/internals.md's Layers table must show the same ranks.
Every finding names file:line. Regex parsing of C, good enough for this code base's style.

  check_layers.py [ROOT]      check a tree (default: the repository holding this script)
  check_layers.py --self-test check that bad trees fail and a good one passes
"""
import os
import re
import sys
import tempfile

IDENT = re.compile(r"\bps_\w+")
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)


def read_layers(root):
    """Return ({module: rank}, {public-only modules}, {private headers}) from src/LAYERS."""
    ranks, public_only, private = {}, set(), set()
    path = os.path.join(root, "src", "LAYERS")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "public-only":
                public_only.update(words[1:])
            elif words[0] == "private":
                private.update(words[1:])
            elif words[0].isdigit():
                for m in words[1:]:
                    if m in ranks:
                        raise SystemExit(f"src/LAYERS:{n}: {m} has a rank already")
                    ranks[m] = int(words[0])
            else:
                raise SystemExit(f"src/LAYERS:{n}: expected a rank, 'public-only' or 'private'")
    return ranks, public_only, private


def read_allowed(root):
    allowed = set()
    path = os.path.join(root, "tests", "layers", "allowed.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                if len(words) == 2:
                    allowed.add((words[0], words[1]))
    return allowed


def docs_mismatch(root, ranks):
    """The rank table of docs/internals.md (section Layers) against src/LAYERS, if the doc is
    there: a list of problems."""
    path = os.path.join(root, "docs", "internals.md")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Layers\n", 1)[1:] or [""]
    section = section[0].split("\n## ", 1)[0]
    shown = []
    for m in re.finditer(r"^\| *(\d+) *\|([^|\n]*)\|", section, re.M):
        for name in m.group(2).replace("`", "").split(","):
            if name.strip():
                shown.append((name.strip(), int(m.group(1))))
    if sorted(shown) == sorted(ranks.items()):
        return []
    diff = sorted(set(shown) ^ set(ranks.items())) or "a module shown twice"
    return [f"docs/internals.md:1: the Layers table differs from src/LAYERS: {diff}"]


def module_of(rel):
    """src/plan/plan.c -> plan; apps/cli/main.c -> apps/cli; anything else -> None."""
    parts = rel.split("/")
    if len(parts) < 3:
        return None
    if parts[0] == "src":
        return parts[1]
    if parts[0] == "apps":
        return "apps/" + parts[1]
    return None


def strip_c(text):
    """Blank comments, string and character literals, keeping every newline."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            out.append(c)
            i += 1
            continue
        out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
        i = j
    return "".join(out)


def blank_preprocessor(code):
    """Blank preprocessor lines (with their continuations) so braces in macros do not count."""
    lines, cont = code.split("\n"), False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            lines[k] = ""
    return "\n".join(lines)


def definitions(code):
    """Names of non-static functions and variables defined at file scope."""
    found, depth, start = set(), 0, 0
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            start = i + 1
        elif c == ";" and depth == 0:
            start = i + 1
        elif depth == 0 and code.startswith("ps_", i) and (i == 0 or not code[i - 1].isalnum()
                                                          and code[i - 1] != "_"):
            m = IDENT.match(code, i)
            prefix = code[start:i]
            rest = code[m.end():].lstrip()
            storage = re.search(r"\b(static|extern|typedef)\b", prefix)
            if not storage and _is_definition(rest):
                found.add(m.group(0))
            i = m.end()
            continue
        i += 1
    return found


def _is_definition(rest):
    if rest.startswith("["):
        return True
    if rest.startswith("="):
        return not rest.startswith("==")
    if not rest.startswith("("):
        return False
    depth = 0
    for k, c in enumerate(rest):
        depth += c == "("
        depth -= c == ")"
        if depth == 0:
            return rest[k + 1:].lstrip().startswith("{")
    return False


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


class Tree:
    """One source tree: its rank table, its C files and who defines each name."""

    def __init__(self, root):
        self.root = root
        self.ranks, self.public_only, self.private = read_layers(root)
        self.allowed, self.allowances_used = read_allowed(root), set()
        self.problems, self.code, self.owner = [], {}, {}
        for rel in self._files():
            mod = module_of(rel)
            if mod is None:
                continue
            if mod not in self.ranks:
                self.problems.append(f"{rel}:1: module {mod} has no rank in src/LAYERS")
                continue
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                self.code[rel] = f.read()
            if rel.endswith(".c"):
                for name in definitions(blank_preprocessor(strip_c(self.code[rel]))):
                    self.owner.setdefault(name, mod)

    def _files(self):
        files = []
        for top in ("src", "apps"):
            for dirpath, _, names in os.walk(os.path.join(self.root, top)):
                for name in names:
                    if name.endswith((".c", ".h")):
                        rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                        files.append(rel.replace(os.sep, "/"))
        return sorted(files)

    def _allow(self, rel, what):
        if (rel, what) in self.allowed:
            self.allowances_used.add((rel, what))
            return True
        return False

    def _sibling(self, a, b):
        same = self.ranks[a] == self.ranks[b]
        return "; modules of one rank do not use each other" if same else ""

    def check_includes(self, rel, mod, text):
        ranks = self.ranks
        for m in INCLUDE.finditer(text):
            target = m.group(1)
            head = target.split("/", 1)[0] if "/" in target else None
            if head is None or head == "peerscope":
                continue
            if head not in ranks and "apps/" + head in ranks:
                head = "apps/" + head  # a front end's own header: "web/web.h" is apps/web's
            if head == mod:
                continue
            where = f"{rel}:{line_of(text, m.start())}"
            if head not in ranks:
                if os.path.isdir(os.path.join(self.root, "src", head)):
                    self.problems.append(f"{where}: module {head} has no rank in src/LAYERS")
            elif mod in self.public_only and not head.startswith("apps/"):
                if not self._allow(rel, target):
                    self.problems.append(f'{where}: front end {mod} includes "{target}" '
                                         f"(front ends use only peerscope/peerscope.h)")
            elif target in self.private:
                self.problems.append(f'{where}: {mod} includes "{target}", private to {head}')
            elif ranks[head] >= ranks[mod]:
                self.problems.append(f'{where}: {mod} (rank {ranks[mod]}) includes "{target}" '
                                     f"of {head} (rank {ranks[head]}){self._sibling(mod, head)}")

    def check_uses(self, rel, mod, text):
        """The first use in a file of each name defined in another module."""
        stripped, seen = strip_c(text), set()
        for m in IDENT.finditer(stripped):
            name = m.group(0)
            dmod = self.owner.get(name)
            if dmod is None or dmod == mod or name in seen:
                continue
            seen.add(name)
            where = f"{rel}:{line_of(stripped, m.start())}"
            if mod in self.public_only:
                internal = name.startswith("ps__") and not dmod.startswith("apps/")
                if internal and not self._allow(rel, name):
                    self.problems.append(f"{where}: front end {mod} uses {name} of {dmod} "
                                         f"(front ends use only the public API)")
            elif self.ranks[dmod] >= self.ranks[mod]:
                self.problems.append(f"{where}: {mod} (rank {self.ranks[mod]}) uses {name} of "
                                     f"{dmod} (rank {self.ranks[dmod]}){self._sibling(mod, dmod)}")


def scan(root):
    """Return (['file:line: message' for every upward edge], [unused allowances])."""
    tree = Tree(root)
    for rel, text in tree.code.items():
        tree.check_includes(rel, module_of(rel), text)
        tree.check_uses(rel, module_of(rel), text)
    tree.problems += docs_mismatch(root, tree.ranks)
    return tree.problems, sorted(tree.allowed - tree.allowances_used)


def check(root):
    problems, stale = scan(root)
    for s in stale:
        print(f"note: tests/layers/allowed.txt: '{s[0]} {s[1]}' is no longer used; remove it")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s): includes and calls point down only; see src/LAYERS "
              "and docs/internals.md (Layers)")
        return 1
    print("layers: every include and call points down")
    return 0


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def self_test():
    """The check must fail on bad trees (else it could pass silently) and pass a good one."""
    layers = ("0 low\n1 high side\n2 apps/front\npublic-only apps/front\n"
              "private low/low_internal.h\n")
    good = {
        "src/LAYERS": layers,
        "docs/internals.md": "# x\n\n## Layers\n\n| rank | modules |\n|---|---|\n"
                             "| 0 | low |\n| 1 | high, side |\n| 2 | apps/front |\n\n## Next\n",
        "src/low/low.h": "int ps__low(void);\n",
        "src/low/low_internal.h": "int ps__low_part(void);\n",
        "src/low/low.c": '#include "low/low.h"\n#include "low/low_internal.h"\n'
                         "int ps__low(void) { return ps__low_part(); }\n"
                         "int ps__low_part(void) { return 1; }\n"
                         "static int ps_hidden(void) { return 0; }\n",
        "src/high/high.c": '#include "low/low.h"\n/* ps__high_only() */\n'
                           "int ps_high(void) { return ps__low(); }\n"
                           'const char *ps__high_names[] = {"ps_low"};\n',
        "apps/front/main.c": '#include "peerscope/peerscope.h"\n'
                             "int main(void) { return ps_high(); }\n",
    }
    bad = {
        "upward include": ("src/low/up.c", '#include "high/high.h"\n',
                           'src/low/up.c:1: low (rank 0) includes "high/high.h"'),
        "upward call": ("src/low/up.c", "int f(void);\nint f(void) { return ps_high(); }\n",
                        "src/low/up.c:2: low (rank 0) uses ps_high of high (rank 1)"),
        "upward variable": ("src/low/up.c", "int f(void) { return !ps__high_names; }\n",
                            "src/low/up.c:1: low (rank 0) uses ps__high_names of high"),
        "front end internal": ("apps/front/x.c", "\nint g(void) { return ps__low(); }\n",
                               "apps/front/x.c:2: front end apps/front uses ps__low"),
        "front end header": ("apps/front/y.c", '#include "low/low.h"\n',
                             'apps/front/y.c:1: front end apps/front includes "low/low.h"'),
        "sibling call": ("src/side/s.c", "int s(void) { return ps_high(); }\n",
                         "src/side/s.c:1: side (rank 1) uses ps_high of high (rank 1); modules"),
        "private header": ("src/high/p.c", '\n#include "low/low_internal.h"\n',
                           'src/high/p.c:2: high includes "low/low_internal.h", private to low'),
        "unranked module": ("src/new/new.c", "int z;\n", "module new has no rank"),
        "docs mirror": ("docs/internals.md", "## Layers\n\n| 0 | low |\n| 1 | high |\n",
                        "docs/internals.md:1: the Layers table differs"),
    }
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        write_tree(tmp, good)
        problems, _ = scan(tmp)
        if problems:
            print("self-test: a good tree was rejected:", *problems, sep="\n  ")
            failures += 1
    for what, (rel, text, expect) in bad.items():
        with tempfile.TemporaryDirectory() as tmp:
            write_tree(tmp, dict(good, **{rel: text}))
            problems, _ = scan(tmp)
            if not any(p.startswith(expect) or expect in p for p in problems):
                print(f"self-test: {what} not caught (wanted '{expect}'; got {problems})")
                failures += 1
    with tempfile.TemporaryDirectory() as tmp:
        write_tree(tmp, dict(good, **{"apps/front/y.c": '#include "low/low.h"\n',
                                      "tests/layers/allowed.txt": "apps/front/y.c low/low.h\n"}))
        problems, _ = scan(tmp)
        if problems:
            print("self-test: an allowed include was rejected:", problems)
            failures += 1
    print("self-test:", "FAILED" if failures else f"ok ({len(bad)} bad trees caught)")
    return 1 if failures else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    return check(os.path.abspath(root))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
