#!/usr/bin/env bash
# The project's structure rules (`make lint`): every src/**/*.rs file has at most 800 lines of non-test code (the
# lines before the first `#[cfg(test)]` at column 0 that a `mod tests` line follows), and the top-level modules of
# src/ (a file src/x.rs or a directory src/x/) import one another without a cycle: a -> b when a file of a mentions
# `crate::b` (`use crate::b...`, `use crate::{.., b, ..}` at any nesting of braces, or a path `crate::b::..`), in code
# or tests but not in comments. Prints each offender and each cycle (one shortest cycle through each module of a
# strongly connected group, with where each step's first mention is); exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "${1:-src}" <<'PY'
import os
import re
import sys
from collections import deque

LIMIT = 800
src = sys.argv[1]
TEST_START = re.compile(r"^(pub(\([^)]*\))? )?mod tests\b")
LINE_COMMENT = re.compile(r"//.*")
BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
CRATE_PATH = re.compile(r"(?<![\w$])crate::\s*(\{|[A-Za-z_]\w*)")


def rust_files(root):
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(top, name)


def non_test_lines(lines):
    for i, line in enumerate(lines):
        if line.rstrip("\n") == "#[cfg(test)]" and i + 1 < len(lines) and TEST_START.match(lines[i + 1]):
            return i
    return len(lines)


def braced_names(text, at):
    """The first segment of each item of the brace group opening at text[at] ("{a::x, b::{c, d}, e}" -> a, b, e),
    each with its offset."""
    names, depth, item_start = [], 0, at + 1
    for i in range(at, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if (c == "," and depth == 1) or depth == 0:
            m = re.match(r"\s*([A-Za-z_]\w*)", text[item_start:i])
            if m:
                names.append((m.group(1), item_start + m.start(1)))
            item_start = i + 1
            if depth == 0:
                break
    return names


def module_of(path):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


files = list(rust_files(src))
modules = {module_of(f) for f in files} - {"main", "lib"}
failed = False

for path in files:
    with open(path, encoding="utf-8") as f:
        count = non_test_lines(f.readlines())
    if count > LIMIT:
        print(f"check-structure: {path}: {count} non-test lines (at most {LIMIT})")
        failed = True

# edges[a][b]: where a first mentions crate::b ("path:line").
edges = {m: {} for m in modules}
for path in files:
    here = module_of(path)
    if here not in modules:
        continue
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # Comments blanked to spaces, so offsets (and so line numbers) stay.
    text = BLOCK_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    text = LINE_COMMENT.sub(lambda m: " " * len(m.group(0)), text)
    for m in CRATE_PATH.finditer(text):
        if m.group(1) == "{":
            names = braced_names(text, m.start(1))
        else:
            names = [(m.group(1), m.start(1))]
        for name, offset in names:
            if name in modules and name != here and name not in edges[here]:
                edges[here][name] = f"{path}:{text.count(chr(10), 0, offset) + 1}"


def strongly_connected(graph):
    """Tarjan's algorithm, iteratively; the components of more than one module."""
    index, low, on_stack, stack, groups, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def shortest_cycle_through(start, graph, group):
    """Breadth-first from start back to it, within the group."""
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in group:
                continue
            if child == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return None


printed = set()
for group in strongly_connected(edges):
    members = set(group)
    for start in group:
        cycle = shortest_cycle_through(start, edges, members)
        # One rotation of each cycle: the one starting at its smallest module.
        at = cycle.index(min(cycle))
        cycle = cycle[at:] + cycle[:at]
        if tuple(cycle) in printed:
            continue
        printed.add(tuple(cycle))
        failed = True
        steps = [f"{a} -> {b} ({edges[a][b]})" for a, b in zip(cycle, cycle[1:] + cycle[:1])]
        print(f"check-structure: import cycle {' -> '.join(cycle + cycle[:1])}: " + ", ".join(steps))

if not failed:
    print(f"ok   structure: {len(files)} files of at most {LIMIT} non-test lines, {len(modules)} modules without cycles")
sys.exit(1 if failed else 0)
PY
