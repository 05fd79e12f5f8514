"""Every `python run.py` line of the README has a recipe in tools/readme_lines.py, which runs them all on tiny
settings (the table of exit codes and wall times); the parser reads the README as a shell user would."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_lines", ROOT / "tools" / "readme_lines.py")
readme_lines = importlib.util.module_from_spec(spec)
sys.modules["readme_lines"] = readme_lines
spec.loader.exec_module(readme_lines)


def test_every_readme_line_has_exactly_one_recipe() -> None:
    lines = readme_lines.usage_lines(ROOT / "README.md")
    assert len(lines) >= 20 and "" in lines and "--help" in lines
    used = {id(readme_lines.recipe_of(line)) for line in lines}
    assert used == {id(r) for r in readme_lines.RECIPES}  # no recipe left for a line the README dropped


def test_usage_lines_joins_continuations_and_drops_comments(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("```bash\n"
                      "python3 -m venv .venv && .venv/bin/python run.py   # the default\n"
                      "# python run.py commented=out\n"
                      "python run.py -m a=1,2 \\\n"
                      "    b=3 'c=[\"x y\"]'   # two runs\n"
                      "```\n"
                      "`python run.py inline=not_a_block`\n"
                      "```python\npython run.py other=language\n```\n")
    assert readme_lines.usage_lines(readme) == ["", "-m a=1,2 b=3 'c=[\"x y\"]'"]
    assert readme_lines.split_args("-m a=1,2 b=3 'c=[\"x y\"]'") == ["-m", "a=1,2", "b=3", 'c=["x y"]']


def test_the_tool_runs_a_line_and_tabulates_it(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "tools/readme_lines.py", "--out", str(tmp_path), "--only=--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, rule, row = proc.stdout.strip().splitlines()
    assert header == "| README line | exit | wall s |" and row.startswith("| `python run.py --help` | 0 | ")
    (log,) = tmp_path.glob("line*.log")
    assert "== Tasks (task=) ==" in log.read_text()


def test_a_line_needing_an_earlier_run_is_reported_not_run(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "tools/readme_lines.py", "--out", str(tmp_path), "--only=resume=outputs"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| not run |" in proc.stdout
    assert '"last": "not run: needs the run of an earlier line"' in (tmp_path / "results.json").read_text()
