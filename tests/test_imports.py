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
