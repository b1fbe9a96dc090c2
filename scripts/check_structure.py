#!/usr/bin/env python3
"""shoal's structure check: small files, no dead-code allowances, no
import cycles between the modules of a crate. CI runs it from
scripts/test.sh; it exits 1 and names the file (or the modules) at fault.

Rules:

1. Length. A Rust source file may hold at most 500 lines. Exempt: files
   under a `tests/` folder, files named `*_tests.rs`, and the `fuzz/`
   crate. When a file grows past the limit it is usually two ideas: split
   it into modules.

2. `allow(dead_code)` appears in no Rust file, tests included (comments
   aside). Dead code is deleted, or `#[cfg(...)]`-gated where it is only
   used on some targets.

3. No import cycle between the modules of a crate. Each crate root
   (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`) is followed through its
   `mod NAME;` declarations (`NAME.rs`, `NAME/mod.rs`, or `#[path]`). A
   module is one node, whether a file `foo.rs` or `foo/mod.rs`; a
   submodule in its own file is its own node. A module written inline
   (`mod tests { ... }`) is part of the node of the file it sits in.

   Module A depends on module B (A -> B) when a file of A names a path
   that resolves into B: a `use` declaration (`pub use` re-exports
   included) or a path in the code, starting with `crate::`, `super::`,
   `self::`, a child module's name or a name a `use` bound. The path is
   followed module by module; a name a module imports (`use`, `pub use`)
   is followed to where it points, so `crate::Settings` re-exported by
   the root from `settings` is a dependency on `settings`, not on the
   root. The edge goes to the last module reached: the one that defines
   the item. Paths into other crates are not edges.

   Declaring a child (`mod child;`) is not a dependency. So a child that
   uses its parent's items through `super::` (a test module's
   `use super::*`, say) makes a cycle only when the parent also uses the
   child (`use child::Thing`, `child::f()`, `pub use child::Thing`): then
   each needs the other, and the pair is one idea split across two files.
   The fix is a third module both depend on.

   Modules that depend on each other are reported by the shortest cycle
   through each of them, printed as `a -> b -> a` (`crate` is the root
   module), with the line that makes each edge.

Usage: check_structure.py [--repo DIR] [--self-test]
"""

import argparse
import os
import re
import sys
import tempfile
import unittest

MAX_LINES = 500
SKIP_DIRS = {".git", "target", "node_modules"}

# ---------------------------------------------------------------- files


def rust_files(repo):
    """Every .rs file under repo, as paths relative to it, sorted."""
    found = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in files:
            if name.endswith(".rs"):
                found.append(os.path.relpath(os.path.join(root, name), repo))
    return sorted(found)


def length_exempt(rel):
    parts = rel.split(os.sep)
    return "tests" in parts[:-1] or parts[-1].endswith("_tests.rs") or parts[0] == "fuzz"


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def strip_code(text):
    """The text with comments, string and char literals blanked out
    (newlines kept, so offsets and line numbers stay right)."""
    out = []
    i, n = 0, len(text)

    def blank(chunk):
        out.append(re.sub(r"[^\n]", " ", chunk))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(text[i:j])
            i = j
        elif re.match(r'b?r#*"', text[i : i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            blank(text[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(text[i : j + 1])
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'", text[i:])
            if m:
                blank(m.group(0))
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_lengths(repo, files):
    errors = []
    for rel in files:
        if length_exempt(rel):
            continue
        lines = read(os.path.join(repo, rel)).count("\n")
        if lines > MAX_LINES:
            errors.append(
                f"{rel}: {lines} lines, over the {MAX_LINES}-line limit; split it into modules"
            )
    return errors


DEAD_CODE = re.compile(r"allow\s*\([^)]*\bdead_code\b")


def check_dead_code(repo, files):
    errors = []
    for rel in files:
        code = strip_code(read(os.path.join(repo, rel)))
        for m in DEAD_CODE.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            errors.append(
                f"{rel}:{line}: allow(dead_code); delete the unused code or gate it with #[cfg]"
            )
    return errors


# ---------------------------------------------------------------- modules


class Crate:
    """The module tree of one crate root and the paths its files name."""

    def __init__(self, repo, root_file):
        self.repo = repo
        self.root_file = root_file
        self.files = {}  # node -> [relative file]
        self.children = {}  # node -> {name: node}
        self.aliases = {}  # node -> {name: (context, segments)}
        self.refs = []  # (node, context, segments, file, line, text)
        self._load((), root_file, is_mod_rs=True)
        for node, files in self.files.items():
            for rel in files:
                self._scan(node, rel)

    def _load(self, node, rel, is_mod_rs):
        self.files.setdefault(node, []).append(rel)
        self.children.setdefault(node, {})
        self.aliases.setdefault(node, {})
        code = strip_code(read(os.path.join(self.repo, rel)))
        here = os.path.dirname(rel)
        own_dir = here if is_mod_rs else os.path.join(here, os.path.splitext(os.path.basename(rel))[0])
        raw = read(os.path.join(self.repo, rel))
        for m in re.finditer(r"(?m)^[ \t]*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code):
            name = m.group(1)
            attrs = raw[max(0, m.start() - 300) : m.start()]
            path_attr = re.findall(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:#\[[^\]]*\]\s*)*$', attrs)
            if path_attr:
                # Relative to the declaring file's folder, mod.rs or not.
                candidates = [(os.path.normpath(os.path.join(here, path_attr[-1])), False)]
            else:
                candidates = [
                    (os.path.join(own_dir, name + ".rs"), False),
                    (os.path.join(own_dir, name, "mod.rs"), True),
                ]
            for path, child_is_mod_rs in candidates:
                if os.path.isfile(os.path.join(self.repo, path)):
                    child = node + (name,)
                    self.children[node][name] = child
                    if path not in self.files.get(child, []):
                        self._load(child, path, child_is_mod_rs)
                    break

    def _scan(self, node, rel):
        code = strip_code(read(os.path.join(self.repo, rel)))
        events = []  # (offset, kind, data)
        for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
            events.append((m.end() - 1, "open-mod", m.group(1)))
        for m in re.finditer(r"[{}]", code):
            events.append((m.start(), m.group(0), None))
        use_spans = []
        for m in re.finditer(r"\buse\s+([^;]+);", code):
            events.append((m.start(), "use", m.group(1)))
            use_spans.append((m.start(), m.end()))
        path_re = re.compile(r"(?<![\w:])((?:[A-Za-z_]\w*)(?:\s*::\s*[A-Za-z_]\w*)+)")
        for m in path_re.finditer(code):
            if any(a <= m.start() < b for a, b in use_spans):
                continue
            events.append((m.start(), "path", m.group(1)))
        events.sort(key=lambda e: (e[0], e[1] != "open-mod"))
        depth, stack, pending = 0, [], None
        for offset, kind, data in events:
            if kind == "open-mod":
                pending = data
            elif kind == "{":
                depth += 1
                if pending is not None:
                    stack.append((pending, depth))
                    pending = None
            elif kind == "}":
                if stack and stack[-1][1] == depth:
                    stack.pop()
                depth -= 1
            else:
                context = node + tuple(name for name, _ in stack)
                line = code.count("\n", 0, offset) + 1
                if kind == "use":
                    for segments, bound in expand_use(data):
                        if bound:
                            self.aliases[node].setdefault(bound, (context, segments))
                        self.refs.append((node, context, segments, rel, line, "use " + "::".join(segments)))
                else:
                    segments = [s.strip() for s in data.split("::")]
                    self.refs.append((node, context, segments, rel, line, "::".join(segments)))

    def node_of(self, context):
        """The deepest file module on an (inline) module path."""
        while context not in self.files:
            context = context[:-1]
        return context

    def resolve(self, context, segments, depth=0):
        """The module a path names or defines its item in; None outside
        the crate (std, other crates) or when not understood."""
        if depth > 16 or not segments:
            return None
        first, rest = segments[0], list(segments[1:])
        if first == "crate":
            current = ()
        elif first in ("super", "self"):
            ctx = context
            while segments and segments[0] in ("super", "self"):
                if segments[0] == "super":
                    if not ctx:
                        return None
                    ctx = ctx[:-1]
                segments = segments[1:]
            rest = list(segments)
            current = self.node_of(ctx)
        else:
            current = self.node_of(context)
            if first in self.children[current]:
                current = self.children[current][first]
            elif first in self.aliases[current]:
                alias_ctx, alias_segments = self.aliases[current][first]
                if alias_segments[:1] == [first] and alias_ctx == context:
                    return None  # `use foo::bar` of an external crate `foo`
                current = self.resolve(alias_ctx, alias_segments, depth + 1)
                if current is None:
                    return None
            else:
                return None
        for segment in rest:
            if segment in self.children[current]:
                current = self.children[current][segment]
            elif segment in self.aliases[current]:
                alias_ctx, alias_segments = self.aliases[current][segment]
                target = self.resolve(alias_ctx, alias_segments, depth + 1)
                if target is None:
                    return current
                current = target
            else:
                break
        return current

    def edges(self):
        """{(from, to): (file, line, text)} for every dependency."""
        found = {}
        for node, context, segments, rel, line, text in self.refs:
            if segments and segments[-1] == "*":
                segments = segments[:-1]
            target = self.resolve(context, segments)
            if target is None or target == node:
                continue
            found.setdefault((node, target), (rel, line, text))
        return found


def expand_use(tree):
    """`a::{b, c::d as e, self, f::*}` -> [(segments, bound name)]; a
    glob or `as _` binds no name."""
    tree = re.sub(r"\s+as\s+", "@AS@", tree)
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"^pub(\([^)]*\))?", "", tree)
    result = []

    def split_top(s):
        parts, depth, start = [], 0, 0
        for i, c in enumerate(s):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        return [p for p in parts if p]

    def walk(prefix, s):
        brace = s.find("{")
        if brace >= 0 and s.endswith("}"):
            head = [x for x in s[:brace].split("::") if x]
            for part in split_top(s[brace + 1 : -1]):
                walk(prefix + head, part)
            return
        path, alias = (s.split("@AS@") + [None])[:2]
        segments = prefix + [x for x in path.split("::") if x]
        if segments and segments[-1] == "self":
            segments = segments[:-1]
        if not segments:
            return
        if segments[-1] == "*":
            result.append((segments, None))
            return
        bound = alias if alias is not None else segments[-1]
        result.append((segments, None if bound == "_" else bound))

    walk([], tree)
    return result


def crate_roots(repo):
    roots = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        if "Cargo.toml" not in files:
            continue
        src = os.path.join(root, "src")
        for name in ("lib.rs", "main.rs"):
            if os.path.isfile(os.path.join(src, name)):
                roots.append(os.path.relpath(os.path.join(src, name), repo))
        bins = os.path.join(src, "bin")
        if os.path.isdir(bins):
            for name in sorted(os.listdir(bins)):
                path = os.path.join(bins, name)
                if name.endswith(".rs"):
                    roots.append(os.path.relpath(path, repo))
                elif os.path.isfile(os.path.join(path, "main.rs")):
                    roots.append(os.path.relpath(os.path.join(path, "main.rs"), repo))
    return sorted(roots)


def module_name(node):
    return "::".join(node) if node else "crate"


def shortest_cycles(nodes, graph):
    """For each module of a group that depend on each other, the shortest
    cycle through it (breadth first), each cycle once, rotated to start at
    its least module."""
    group = set(nodes)
    cycles = set()
    for start in sorted(nodes):
        parents, frontier, found = {start: None}, [start], None
        while frontier and found is None:
            following = []
            for current in frontier:
                for nxt in sorted(graph.get(current, ())):
                    if nxt == start:
                        found = current
                        break
                    if nxt in group and nxt not in parents:
                        parents[nxt] = current
                        following.append(nxt)
                if found is not None:
                    break
            frontier = following
        path, node = [], found
        while node is not None:
            path.append(node)
            node = parents[node]
        path.reverse()
        low = path.index(min(path))
        path = path[low:] + path[:low]
        cycles.add(tuple(path + [path[0]]))
    return sorted(cycles, key=lambda c: (len(c), c))


def strongly_connected(graph):
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def check_cycles(repo):
    errors = []
    sys.setrecursionlimit(10000)
    for root in crate_roots(repo):
        crate = Crate(repo, root)
        edges = crate.edges()
        graph = {}
        for a, b in edges:
            graph.setdefault(a, set()).add(b)
        for group in strongly_connected(graph):
            for cycle in shortest_cycles(group, graph):
                lines = [f"{root}: import cycle: " + " -> ".join(module_name(n) for n in cycle)]
                for a, b in zip(cycle, cycle[1:]):
                    rel, line, text = edges[(a, b)]
                    lines.append(f"    {rel}:{line}: {text}")
                errors.append("\n".join(lines))
    return errors


def run(repo):
    files = rust_files(repo)
    errors = check_lengths(repo, files) + check_dead_code(repo, files) + check_cycles(repo)
    for error in errors:
        print(f"check_structure: {error}")
    if errors:
        print(f"check_structure: {len(errors)} problem(s); see the rules at the top of scripts/check_structure.py")
        return 1
    return 0


# ---------------------------------------------------------------- self-test


class SelfTest(unittest.TestCase):
    def plant(self, files):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for rel, text in files.items():
            path = os.path.join(tmp.name, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return tmp.name

    def cycles(self, files):
        files = {"crates/x/Cargo.toml": "[package]\n", **files}
        return [e.splitlines()[0].split("import cycle: ")[1] for e in check_cycles(self.plant(files))]

    def test_planted_long_file_is_named(self):
        repo = self.plant({
            "crates/x/src/big.rs": "fn f() {}\n" * (MAX_LINES + 1),
            "crates/x/src/ok.rs": "fn f() {}\n" * MAX_LINES,
            "crates/x/tests/long.rs": "fn f() {}\n" * 900,
            "crates/x/src/big_tests.rs": "fn f() {}\n" * 900,
            "fuzz/fuzz_targets/t.rs": "fn f() {}\n" * 900,
        })
        errors = check_lengths(repo, rust_files(repo))
        self.assertEqual(len(errors), 1)
        self.assertIn(os.path.join("crates", "x", "src", "big.rs"), errors[0])

    def test_dead_code_allowance_is_found_outside_comments(self):
        repo = self.plant({
            "crates/x/tests/common/mod.rs": "#![allow(dead_code)]\n",
            "crates/x/src/a.rs": "// never #![allow(dead_code)]\n#[cfg_attr(test, allow(unused, dead_code))]\nfn f() {}\n",
        })
        errors = check_dead_code(repo, rust_files(repo))
        self.assertEqual(len(errors), 2)
        self.assertTrue(errors[0].startswith(os.path.join("crates", "x", "src", "a.rs") + ":2"))

    def test_planted_cycle_between_siblings(self):
        cycles = self.cycles({
            "crates/x/src/lib.rs": "mod a;\nmod b;\n",
            "crates/x/src/a.rs": "use crate::b::B;\npub struct A;\n",
            "crates/x/src/b.rs": "pub struct B;\nfn f() { let _ = crate::a::A; }\n",
        })
        self.assertEqual(cycles, ["a -> b -> a"])

    def test_three_module_cycle_through_re_export_and_alias(self):
        cycles = self.cycles({
            "crates/x/src/lib.rs": "mod a;\nmod b;\nmod c;\npub use c::C;\n",
            "crates/x/src/a.rs": "use crate::b;\nfn f() { b::g(); }\n",
            "crates/x/src/b.rs": "pub fn g() { let _ = crate::C; }\n",
            "crates/x/src/c/mod.rs": "pub struct C;\nuse super::a as first;\n",
        })
        self.assertEqual(cycles, ["a -> b -> c -> a"])

    def test_child_using_parent_is_a_cycle_only_if_the_parent_uses_it(self):
        tree = {
            "crates/x/src/lib.rs": "mod store;\n",
            "crates/x/src/store/mod.rs": "mod staging;\npub struct Store;\n#[cfg(test)]\n#[path = \"store_tests.rs\"]\nmod tests;\n",
            "crates/x/src/store/staging.rs": "use super::Store;\n",
            "crates/x/src/store/store_tests.rs": "use super::*;\n",
        }
        self.assertEqual(self.cycles(tree), [])
        tree["crates/x/src/store/mod.rs"] += "use staging::Staged;\n"
        self.assertEqual(self.cycles(tree), ["store -> store::staging -> store"])

    def test_path_attribute_is_relative_to_the_declaring_file(self):
        cycles = self.cycles({
            "crates/x/src/lib.rs": "mod a;\n",
            "crates/x/src/a.rs": "#[path = \"a_parts.rs\"]\nmod parts;\nuse parts::P;\npub struct A;\n",
            "crates/x/src/a_parts.rs": "use super::A;\npub struct P;\n",
        })
        self.assertEqual(cycles, ["a -> a::parts -> a"])

    def test_comments_strings_inline_tests_and_other_crates_make_no_edge(self):
        cycles = self.cycles({
            "crates/x/src/lib.rs": "mod a;\nmod b;\nuse std::io;\nuse serde::Serialize;\n",
            "crates/x/src/a.rs": "// crate::b::B\nconst S: &str = \"crate::b::B\";\nuse crate::b::B;\n",
            "crates/x/src/b.rs": "pub struct B;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() { let _ = self::super::B; }\n}\n",
        })
        self.assertEqual(cycles, [])

    def test_use_trees_expand(self):
        self.assertEqual(
            expand_use("crate::a::{self, b::{C, D as E}, f::*, G as _}"),
            [(["crate", "a"], "a"), (["crate", "a", "b", "C"], "C"), (["crate", "a", "b", "D"], "E"),
             (["crate", "a", "f", "*"], None), (["crate", "a", "G"], None)],
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    parser.add_argument("--self-test", action="store_true", help="run the checker's own tests")
    args = parser.parse_args()
    if args.self_test:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(SelfTest)
        result = unittest.TextTestRunner(verbosity=1).run(suite)
        return 0 if result.wasSuccessful() else 1
    return run(os.path.abspath(args.repo))


if __name__ == "__main__":
    sys.exit(main())
