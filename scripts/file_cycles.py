#!/usr/bin/env python3
"""Prints every circle of imports inside src/ (beside scripts/module_graph.sh, which prints the
top folders' imports): within each folder, between its files and subfolders (a subfolder counts as
one, all its files together). A file's imports are its `crate::` and `super::` paths, resolved
through `pub use` re-exports; test modules, comments and doc links are left out, and so is a
module's import of its own ancestors (a child using its parent's items is how a Rust module uses
its parts). Prints nothing when there is no circle.

Run from anywhere: python3 scripts/file_cycles.py
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules():
    """Module path (a::b) -> file path, for every .rs file under src/."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), ROOT)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            found["::".join(parts)] = rel
    return found


def code_of(path):
    """The file's text before its test module, without comment lines."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    text = text.split("#[cfg(test)]")[0]
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


def main():
    files = modules()
    reexports = {}
    for mod, path in files.items():
        prefix = mod + "::" if mod else ""
        for m in re.finditer(r"pub use ([a-z_:]+)::\{([^}]*)\};", code_of(path)):
            for item in m.group(2).split(","):
                if item.strip():
                    reexports[(mod, item.strip())] = prefix + m.group(1) + "::" + item.strip()
        for m in re.finditer(r"pub use ([a-z_:]+)::([A-Za-z_]+);", code_of(path)):
            reexports[(mod, m.group(2))] = prefix + m.group(1) + "::" + m.group(2)

    def resolve(path):
        parts = path.split("::")
        key = ("::".join(parts[:-1]), parts[-1])
        if len(parts) >= 2 and key in reexports:
            return resolve(reexports[key])
        while parts:
            if "::".join(parts) in files:
                return "::".join(parts)
            parts = parts[:-1]
        return None

    edges = {}
    for mod, path in files.items():
        parent = "::".join(mod.split("::")[:-1])
        deps = set()
        for m in re.finditer(r"\b(crate|super)::([A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*)(::\{([^;]*?)\})?", code_of(path)):
            base = m.group(2).rstrip(":")
            if m.group(1) == "super":
                base = (parent + "::" if parent else "") + base
            items = [i.split(" ")[0] for i in re.split(r"[,\s]+", re.sub(r"[{}]", "", m.group(4) or ""))]
            targets = [base + "::" + i for i in items if i and i != "self"] or [base]
            deps.update(t for t in map(resolve, targets) if t)
        edges[mod] = {d for d in deps if d and d != mod and not mod.startswith(d + "::")}

    # Per folder: its entries (files, and subfolders as one) and the imports between them.
    def entry(path, folder):
        """The entry of `folder` holding the file `path` (None: outside the folder)."""
        prefix = folder + os.sep if folder else ""
        if not path.startswith(prefix):
            return None
        rest = path[len(prefix):].split(os.sep)
        return rest[0]

    folders = {os.path.dirname(p) for p in files.values()}
    for folder in sorted(folders):
        links = {}
        for mod, path in files.items():
            a = entry(path, folder)
            if a is None:
                continue
            for dep in edges[mod]:
                b = entry(files[dep], folder)
                if b is not None and b != a and b != "mod.rs":
                    links.setdefault(a, set()).add(b)
        for group in circles(links):
            where = folder or "src"
            print(f"circle in {where}/:", ", ".join(group))
            for a in group:
                print("   ", a, "->", ", ".join(sorted(links[a] & set(group))))


def circles(links):
    """The groups of nodes of `links` (node -> nodes it imports) that reach each other (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in links.get(v, ()):
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
                groups.append(sorted(group))

    for v in sorted(links):
        if v not in index:
            visit(v)
    return groups


if __name__ == "__main__":
    main()
