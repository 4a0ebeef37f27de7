"""The import graph of the repository's own Python, read from the sources (ast, nothing imported),
and its page in ``docs/architecture.md``.

    python -m tools.readme        # rewrites the generated section of docs/architecture.md too

``tests/test_structure.py`` checks the graph (the library imports nothing of the course) and
``tests/test_readme.py`` that the page is current.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "klloss"
PACKAGES = ("klloss", "course", "tools", "benchmarks")
"""The first-party packages, library first."""


def module_name(path, root=ROOT):
    """``klloss/loss.py`` -> ``klloss.loss``; ``course/explorer/__init__.py`` -> ``course.explorer``."""
    parts = list(Path(path).resolve().relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(packages=PACKAGES, root=ROOT):
    """{module name: path} of every Python file in ``packages``, sorted by name."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "node_modules" not in path.parts:
                found[module_name(path, root)] = path
    return dict(sorted(found.items(), key=lambda item: (packages.index(item[0].split(".")[0]), item[0])))


def _absolute(node, module, is_package):
    """The module an ``import from`` names, made absolute (None for an import past the top)."""
    if node.level == 0:
        return node.module
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(base) - 1:
        return None
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported(text, module, is_package=False, known=()):
    """Every module name ``text`` (the source of ``module``) imports, anywhere in it, absolute.
    ``from X import name`` gives ``X.name`` when that is one of the ``known`` modules, and ``X``
    when some name it imports is not (an attribute of ``X``)."""
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            if target is None:
                names.add("." * node.level + (node.module or ""))
                continue
            submodules = {f"{target}.{alias.name}" for alias in node.names} & set(known)
            names.update(submodules)
            if len(submodules) < len(node.names):
                names.add(target)
    return names


def graph(packages=PACKAGES, root=ROOT):
    """{module: sorted first-party modules it imports} (a ``from X import name`` that names an
    attribute, not a module, counts as an import of ``X``)."""
    modules = sources(packages, root)
    edges = {}
    for name, path in modules.items():
        found = imported(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules)
        edges[name] = sorted({n for n in found if n in modules and n != name})
    return edges


def package_edges(edges):
    """{(importing package, imported package)}: the graph folded to top-level packages."""
    return sorted(
        {(a.split(".")[0], b.split(".")[0]) for a, targets in edges.items() for b in targets}
        - {(p, p) for p in PACKAGES}
    )


def as_markdown(edges=None):
    """The generated section of docs/architecture.md: the package graph (Mermaid) and, for the
    library and the course, every module with the first-party modules it imports."""
    edges = graph() if edges is None else edges
    lines = ["```mermaid", "flowchart LR"]
    lines += [f"  {a} --> {b}" for a, b in package_edges(edges)]
    lines += ["```", "", "| module | imports |", "|---|---|"]
    for name, targets in edges.items():
        if name.split(".")[0] in (LIBRARY, "course"):
            shown = ", ".join(f"`{t}`" for t in targets) or "(nothing of this repository)"
            lines.append(f"| `{name}` | {shown} |")
    return "\n".join(lines)
