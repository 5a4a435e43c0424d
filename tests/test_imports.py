"""A numpy-only exercise must not pay for importing torch (or sympy)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_grading_softmax_imports_neither_torch_nor_sympy():
    code = (
        "import sys\n"
        "from dlgrade.graders import api\n"
        "rep = api.check('tests/fixtures/softmax/correct_shift_max.py')\n"
        "assert rep.score == rep.max_score, rep\n"
        "from dlgrade.graders.results import StudentReport\n"
        "from dlgrade.reports.terminal import render_report\n"
        "render_report(StudentReport.of(rep))\n"
        "print('torch' in sys.modules, 'sympy' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- every module alone, no cycles

import ast  # noqa: E402

import pytest  # noqa: E402

PACKAGES = ("graders", "reports", "reference", "exercises")
SANDBOX_SIDE = {"dlgrade.graders.sandboxed_worker", "dlgrade.graders.symbolic", "dlgrade.graders.symbolic_text"}


def _modules() -> list[str]:
    found = ["dlgrade", "dlgrade.__main__"]
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            if "__pycache__" in rel.parts or any(p.startswith(".") or "-" in p for p in rel.parts):
                continue
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append(".".join(["dlgrade", *parts]))
    return found


def _file(module: str) -> Path:
    parts = module.split(".")[1:]
    base = ROOT.joinpath(*parts) if parts and parts[0] in PACKAGES else ROOT.joinpath("dlgrade", *parts)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _top_level_imports(module: str) -> set[str]:
    """dlgrade modules imported when ``module`` is imported (module level, not in functions)."""
    tree = ast.parse(_file(module).read_text(encoding="utf-8"))
    out = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            continue
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                break
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("dlgrade"):
                names = [f"{sub.module}.{a.name}" for a in sub.names]
                out |= {n for n in names if n in MODULES} or {sub.module}
            elif isinstance(sub, ast.Import):
                out |= {a.name for a in sub.names if a.name.startswith("dlgrade")}
    return out & set(MODULES)


MODULES = _modules()


def test_the_module_list_is_complete():
    assert "dlgrade.graders.engine" in MODULES and "dlgrade.graders.checks.values" in MODULES
    assert "dlgrade.reports.html" in MODULES and "dlgrade.reference.softmax" in MODULES


def test_no_import_cycle_at_module_level():
    graph = {m: _top_level_imports(m) - {m} for m in MODULES}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(n):], n]))
            if not state.get(n):
                visit(n, [*stack, n])
        state[m] = 2

    for m in MODULES:
        if not state.get(m):
            visit(m, [m])


@pytest.mark.parametrize("module", [m for m in MODULES if (m not in SANDBOX_SIDE or m.endswith("symbolic_text"))
                                    and not m.endswith("__main__")])  # the entry points run the CLI
def test_every_module_imports_alone_in_a_fresh_interpreter(module):
    r = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT / "tests", capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


# --------------------------------------------------------------------------- the library never imports a renderer

# The front ends: they choose the renderers and hand them in (dlgrade.graders.pages).
FRONT_ENDS = {"dlgrade", "dlgrade.__main__", "dlgrade.graders.cli", "dlgrade.graders.kernel_check"}


def _all_imports(module: str) -> set[str]:
    """Every dlgrade module ``module`` names in an import, at any depth (functions included)."""
    out = set()
    for sub in ast.walk(ast.parse(_file(module).read_text(encoding="utf-8"))):
        if isinstance(sub, ast.ImportFrom) and sub.module:
            out |= {sub.module} | {f"{sub.module}.{a.name}" for a in sub.names}
        elif isinstance(sub, ast.Import):
            out |= {a.name for a in sub.names}
        elif (isinstance(sub, ast.Call) and getattr(sub.func, "attr", getattr(sub.func, "id", "")) in
              ("import_module", "__import__") and sub.args and isinstance(sub.args[0], ast.Constant)):
            out.add(str(sub.args[0].value))  # importlib.import_module("dlgrade.reports.html")
    return {m for m in out if m.startswith("dlgrade")}


def test_no_library_module_imports_a_renderer():
    library = [m for m in MODULES if not m.startswith("dlgrade.reports") and m not in FRONT_ENDS]
    assert "dlgrade.graders.batch" in library and "dlgrade.graders.gradebook" in library
    offenders = {m: sorted(n for n in _all_imports(m) if n.startswith("dlgrade.reports")) for m in library}
    assert {m: n for m, n in offenders.items() if n} == {}


def test_grading_a_class_and_overriding_loads_no_renderer(tmp_path):
    """In a fresh interpreter: a class graded from the library (and an override applied)
    writes its records and imports nothing of dlgrade.reports; handing in the HTML pages
    writes them."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for sid, fixture in (("ada", "correct_shift_max.py"), ("ben", "softmax_wrong_axis.py")):
        (subs / f"{sid}.py").write_text((ROOT / "tests" / "fixtures" / "softmax" / fixture).read_text())
    code = (
        "import sys\n"
        "from dlgrade.graders import gradebook, lms\n"
        f"lms.grade({str(subs)!r}, {str(tmp_path / 'out')!r}, jobs=1, exercise_ids=['stable-softmax'])\n"
        f"gradebook.set_override({str(tmp_path / 'out')!r}, 'ben', 'stable-softmax', 9)\n"
        "print(sorted(m for m in sys.modules if m.startswith('dlgrade.reports')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "tests", capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["[]"]
    out = tmp_path / "out"
    assert (out / "grades.csv").read_text().splitlines()[1:] == ["ada,10,10,10", "ben,9,9,10"]
    assert not list(out.rglob("*.html"))

    from dlgrade.graders import gradebook
    from dlgrade.reports.class_pages import HTML_PAGES

    gradebook.refresh(out, pages=HTML_PAGES)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")) == [
        "index.html", "students/ada.html", "students/ben.html"]
    assert "Score set by your instructor: 9 / 10" in (out / "students" / "ben.html").read_text()
