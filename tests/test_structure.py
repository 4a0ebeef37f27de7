"""How the code is laid out, read from the sources with ast: the library (``klloss/``) imports
nothing of the course, the tools, the benchmarks or the tests; no function is longer than about
80 lines; nothing edits ``sys.path``; a tool's module name is not a library or course module's.
"""

import ast
import subprocess
from pathlib import Path

import pytest

from tools import architecture

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_THE_LIBRARY = ("course", "tools", "benchmarks", "tests", "notebooks")
MAX_LINES = 80


def repository_python():
    """Every Python file git tracks or would add (not ignored), node_modules left out."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def outside_imports(text, module, is_package=False):
    """What ``text`` (the source of library module ``module``) imports from outside the library:
    a first-party package other than klloss, or a relative import past the library's top."""
    found = architecture.imported(text, module, is_package)
    return sorted(n for n in found if n.startswith(".") or n.split(".")[0] in OUTSIDE_THE_LIBRARY)


def test_the_check_finds_an_import_of_the_course():
    # the check itself, on sources that break the rule in each way it can be broken
    assert outside_imports("import course.errata", "klloss.loss") == ["course.errata"]
    assert outside_imports("def f():\n    from tools import readme\n", "klloss.loss") == ["tools"]
    assert outside_imports("from ..course import errata", "klloss.loss") == ["..course"]
    assert outside_imports("from . import oracle\nimport numpy", "klloss.loss") == []


@pytest.mark.parametrize(
    "module", sorted(architecture.sources(["klloss"])), ids=lambda name: name.replace(".", "/")
)
def test_the_library_imports_nothing_outside_itself(module):
    path = architecture.sources(["klloss"])[module]
    assert outside_imports(path.read_text(encoding="utf-8"), module, path.name == "__init__.py") == []


def test_the_course_imports_the_library_and_not_the_other_way():
    edges = architecture.package_edges(architecture.graph())
    assert ("course", "klloss") in edges
    assert not [edge for edge in edges if edge[0] == "klloss"], edges


def long_functions(path):
    """(qualified name, lines) of every function or method in ``path`` longer than MAX_LINES,
    counted from its ``def`` (decorators not counted) to its last line, docstring included."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                length = child.end_lineno - child.lineno + 1
                if not isinstance(child, ast.ClassDef) and length > MAX_LINES:
                    found.append((name, length))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_the_length_check_counts_a_long_method(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES - 1))
    path = tmp_path / "m.py"
    path.write_text(f"class A:\n    def ok(self):\n{body}\n\n    def long(self):\n{body}\n        y = 0\n")
    assert long_functions(path) == [("A.long", MAX_LINES + 1)]


@pytest.mark.parametrize("package", architecture.PACKAGES)
def test_no_function_is_longer_than_80_lines(package):
    found = {
        f"{path.relative_to(ROOT)}::{name}": length
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, length in long_functions(path)
    }
    assert found == {}, f"split these: {found}"


def path_edits(text):
    """Lines where ``text`` changes the import path: sys.path changed in place or assigned,
    site.addsitedir."""
    found = []
    for node in ast.walk(ast.parse(text)):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value if node.func.attr != "addsitedir" else node.func
        elif isinstance(node, ast.Assign | ast.AugAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            target = getattr(target, "value", target) if isinstance(target, ast.Subscript) else target
        if target is not None and ast.unparse(target) in ("sys.path", "site.addsitedir"):
            found.append(node.lineno)
    return sorted(found)


def test_the_path_check_finds_every_kind_of_edit():
    text = "import sys, site\nsys.path.insert(0, 'x')\nsys.path += ['y']\nsys.path[:0] = ['z']\n"
    text += "site.addsitedir('w')\nprint(sys.path)\nsys.path = []\n"
    assert path_edits(text) == [2, 3, 4, 5, 7]


def test_nothing_edits_sys_path():
    edits = {
        str(path.relative_to(ROOT)): lines
        for path in repository_python()
        if (lines := path_edits(path.read_text(encoding="utf-8")))
    }
    assert edits == {}, "run tools as `python -m tools.NAME` from the root instead"


def test_tools_do_not_share_names_with_library_or_course_modules():
    tools = {path.stem for path in (ROOT / "tools").glob("*.py")} - {"__init__"}
    others = set()
    for package in ("klloss", "course"):
        others |= {path.stem for path in (ROOT / package).rglob("*.py")}
        others |= {path.name for path in (ROOT / package).iterdir() if path.is_dir()}
    assert tools, "no tools found"
    assert tools & others == set()


@pytest.mark.parametrize("path", sorted((ROOT / "klloss").glob("*.py")), ids=lambda p: p.name)
def test_no_private_torch_names_in_the_library(path):
    # torch._C, torch._dynamo and the like change without notice (issue 25); dunders
    # (torch.__version__) are public. Every attribute chain that starts at the name torch.
    private = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id == "torch" and chain:
            names = chain[::-1]
            if any(n.startswith("_") and not n.endswith("__") for n in names):
                private.add(".".join(["torch", *names]))
    assert not private
