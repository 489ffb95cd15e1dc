"""The package's layers stay one-way (issue 14): the import-linter contracts in pyproject.toml
([tool.importlinter]) hold, so an import cycle or an upward import fails CI (`.ci/run` runs pytest);
and no import hides inside a function unless it says why (`# lazy: <why>`: start-up time), since
that is how the old cycles were papered over."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "auditor"


def test_the_import_contracts_are_kept() -> None:
    lint = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    run = subprocess.run(
        [sys.executable, "-c", lint, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, f"lint-imports failed (see [tool.importlinter]):\n{run.stdout}\n{run.stderr}"
    assert "0 broken" in run.stdout


def lazy_imports_without_reason(path: Path) -> list[str]:
    """Imports inside a function of `path` that no `# lazy:` comment (on the line, or in the
    comment lines just above the import block) explains."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if not isinstance(inner, ast.Import | ast.ImportFrom):
                continue
            above = inner.lineno - 1  # 0-based index of the import line
            explained = "# lazy:" in lines[above]
            while not explained and above > 0:
                above -= 1
                text = lines[above].strip()
                if text.startswith("#"):
                    explained = "# lazy:" in text
                elif not (text.startswith(("from ", "import ")) or text == ""):
                    break
            if not explained:
                found.append(f"{path.name}:{inner.lineno}: {lines[inner.lineno - 1].strip()}")
    return found


def test_no_function_level_import_without_a_reason() -> None:
    offenders = [
        f"{path.parent.relative_to(ROOT)}/{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in lazy_imports_without_reason(path)
    ]
    assert not offenders, "import at the top, or say `# lazy: <why>` above it:\n" + "\n".join(offenders)


def test_the_check_finds_an_unexplained_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def hidden() -> None:\n"
        "    from auditor import schedule\n"
        "\n\n"
        "def explained() -> None:\n"
        "    # lazy: APScheduler only for the scheduler\n"
        "    from auditor import schedule\n"
        "    import json\n",
        encoding="utf-8",
    )
    assert lazy_imports_without_reason(sample) == ["sample.py:2: from auditor import schedule"]
