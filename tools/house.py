"""The house in figures, from the code's own imports (`python tools/house.py`; `--json` for a machine-readable copy).

Reads every module of ``flagdemo/`` as text (nothing is imported or run) and prints: the files in each folder, the
import graph's floors (the longest chain of imports), its cycles (module-level and function-level imports alike, so a
lazy import cannot hide one), the imports that point back up the layers, the function-level imports of flagdemo
modules, and the longest class and function. ``tests/test_house.py`` holds the layers and the cycles to this.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flagdemo"

# The layers, lowest first: a module may import its own layer and those below it, never one above.
LAYERS = ("base", "data", "analysis", "models", "serving", "training", "engine", "corpus", "ui", "cli")
BASE = {"flagdemo", "flagdemo.errors", "flagdemo.limits"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """The layer a module belongs to: the folder under flagdemo/, or 'base' / 'cli' at the top."""
    if module in BASE:
        return "base"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "unplaced"


class Module:
    def __init__(self, path: Path):
        self.path = path
        self.name = module_name(path)
        self.tree = ast.parse(path.read_text(), str(path))
        self.imports: list[tuple[str, int, bool]] = []  # (flagdemo module, line, inside a function)
        self._collect(self.tree, inside=False)

    def _targets(self, node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:  # a relative import, resolved against this module's package
            package = self.name.split(".") if self.path.name == "__init__.py" else self.name.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        return [f"{base}.{alias.name}" for alias in node.names]  # edges() trims a name that is not a module

    def _collect(self, node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                if isinstance(child, ast.ImportFrom) and child.module == "__future__":
                    continue
                for target in self._targets(child):
                    if target.split(".")[0] == "flagdemo":
                        self.imports.append((target, child.lineno, inside))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: never imported at run time
            else:
                self._collect(child, inside or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def read_house() -> dict[str, Module]:
    modules = [Module(path) for path in sorted(PACKAGE.rglob("*.py"))]
    return {module.name: module for module in modules}


def edges(house: dict[str, Module]) -> dict[str, dict[str, tuple[int, bool]]]:
    """module → {imported flagdemo module → (first line, whether every import of it is inside a function)}."""
    graph: dict[str, dict[str, tuple[int, bool]]] = {}
    for name, module in house.items():
        out: dict[str, tuple[int, bool]] = {}
        for imported, line, inside in module.imports:
            target = imported
            while target not in house and "." in target:  # `from pkg import name`: name may be an attribute
                target = target.rsplit(".", 1)[0]
            if target == name or target not in house or target == "flagdemo":
                continue
            if target in out:
                out[target] = (min(out[target][0], line), out[target][1] and inside)
            else:
                out[target] = (line, inside)
        graph[name] = out
    return graph


def cycles(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start, targets in graph.items():
        if start in index:
            continue
        work = [(start, iter(targets))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return sorted(found)


def floors(graph: dict[str, dict[str, tuple[int, bool]]], groups: list[list[str]]) -> int:
    """The longest chain of imports, counting each cycle as one module."""
    representative = {member: group[0] for group in groups for member in group}
    condensed: dict[str, set[str]] = {}
    for node, targets in graph.items():
        source = representative.get(node, node)
        condensed.setdefault(source, set()).update(
            representative.get(target, target) for target in targets if representative.get(target, target) != source
        )
    depth: dict[str, int] = {}

    def height(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((height(target) for target in condensed.get(node, ())), default=0)
        return depth[node]

    sys.setrecursionlimit(10_000)
    return max(height(node) for node in condensed)


def upward(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[str]:
    """Imports from a lower layer into a higher one (or from a module no layer holds)."""
    found = []
    for source, targets in graph.items():
        for target, (line, _) in targets.items():
            here, there = layer_of(source), layer_of(target)
            if "unplaced" in (here, there) or LAYERS.index(there) > LAYERS.index(here):
                found.append(f"{source}:{line} → {target} ({here} → {there})")
    return sorted(found)


def lazy_imports(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[str]:
    return sorted(
        f"{source}:{line} → {target}"
        for source, targets in graph.items()
        for target, (line, inside) in targets.items()
        if inside
    )


def longest(house: dict[str, Module], kind: type | tuple[type, ...]) -> tuple[int, str]:
    best = (0, "")
    for module in house.values():
        for node in ast.walk(module.tree):
            if isinstance(node, kind):
                length = node.end_lineno - node.lineno + 1
                best = max(best, (length, f"{module.path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return best


def measure() -> dict:
    house = read_house()
    graph = edges(house)
    groups = cycles(graph)
    folders = Counter(str(module.path.parent.relative_to(ROOT)) for module in house.values())
    return {
        "files_per_folder": dict(sorted(folders.items())),
        "modules": len(house),
        "imports": sum(len(targets) for targets in graph.values()),
        "floors": floors(graph, groups),
        "cycles": groups,
        "upward": upward(graph),
        "function_level_imports": lazy_imports(graph),
        "longest_class": longest(house, ast.ClassDef),
        "longest_function": longest(house, (ast.FunctionDef, ast.AsyncFunctionDef)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--all", action="store_true", help="list every upward and function-level import")
    figures = measure()
    arguments = parser.parse_args()
    if arguments.json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        return
    print("files per folder:")
    for folder, count in figures["files_per_folder"].items():
        print(f"  {folder:<28} {count}")
    print(f"modules {figures['modules']}, imports between them {figures['imports']}, floors {figures['floors']}")
    print(f"cycles ({len(figures['cycles'])}):")
    for group in figures["cycles"]:
        print("  " + " ⇄ ".join(group))
    for key, label in (("upward", "imports back up the layers"), ("function_level_imports", "function-level imports")):
        rows = figures[key]
        print(f"{label} ({len(rows)}):")
        for row in rows if arguments.all else rows[:12]:
            print(f"  {row}")
        if len(rows) > 12 and not arguments.all:
            print(f"  … {len(rows) - 12} more (--all lists them)")
    for key in ("longest_class", "longest_function"):
        length, where = figures[key]
        print(f"{key.replace('_', ' ')}: {where} ({length} lines)")


if __name__ == "__main__":
    main()
