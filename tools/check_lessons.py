"""Name the learner's lesson copies that need the repository's lesson: one line per copy.

    python3 tools/check_lessons.py my-notebooks      (`make lessons`, and so `make lab`, runs it)

`make lessons` never overwrites a copy in my-notebooks/, so a copy can be:

- from an older kittylab: it imports a kittylab module (or a name in one) that no longer exists,
  e.g. ``kittylab.tutorial``, now ``kittylab.ui.tutorial``; run, it would stop at a
  ModuleNotFoundError (or an ImportError) in its first cell;
- older than the repository's lesson (the lesson changed after the copy was made, by a `git pull`).

Each line says how to take the repository's lesson (``make reset-lesson LESSON=NN``). It only reads
files: it imports no kittylab (it runs before the environment is set up), so any Python 3 does.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "notebooks"
#: An import line, for a cell Python cannot parse as a whole (an IPython magic it holds, say).
IMPORT_LINE = re.compile(r"^\s*(?:from\s+(kittylab(?:\.\w+)*)\s+import\b|import\s+(kittylab(?:\.\w+)*))", re.M)


def module_file(module: str) -> Path | None:
    """The file of a kittylab module in this repository (``kittylab.ui.tutorial``), or None if there is none."""
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_names(path: Path) -> set[str] | None:
    """The names a module binds at its top level (None: any, it has a module ``__getattr__`` or a ``*`` import)."""
    names: set[str] = set()
    statements = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try)):
            statements += node.body + node.orelse + getattr(node, "finalbody", [])
            statements += [statement for handler in getattr(node, "handlers", []) for statement in handler.body]
    return None if "__getattr__" in names else names


def missing(source: str) -> list[str]:
    """What the code imports from kittylab that this kittylab lacks: ``kittylab.tutorial``, ``kittylab.x.name``."""
    # IPython's magics and shell escapes are not Python: they become `pass` so the rest parses.
    python = re.sub(r"(?m)^(\s*)[%!?].*$", r"\1pass", source)
    try:
        tree = ast.parse(python)
    except SyntaxError:
        wanted = [(a or b, []) for a, b in IMPORT_LINE.findall(source)]
    else:
        imports = sorted((node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))),
                         key=lambda node: (node.lineno, node.col_offset))
        wanted = [(alias.name, []) if isinstance(node, ast.Import) else (node.module or "", [alias.name])
                  for node in imports for alias in node.names if isinstance(node, ast.Import) or not node.level]
    lacking = []
    for module, names in wanted:
        if module.split(".")[0] != "kittylab":
            continue
        path = module_file(module)
        if path is None:
            lacking.append(module)
            continue
        bound = top_level_names(path)
        lacking += [f"{module}.{name}" for name in names
                    if name != "*" and bound is not None and name not in bound and module_file(f"{module}.{name}") is None]
    return list(dict.fromkeys(lacking))


def code_of(notebook: Path) -> str:
    """The code cells of a notebook, one after the other ("" if it is not a notebook JSON can read)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return ""
    sources = [cell.get("source", "") for cell in cells if isinstance(cell, dict) and cell.get("cell_type") == "code"]
    return "\n".join("".join(source) if isinstance(source, list) else str(source) for source in sources)


def how_to_take(lesson: Path, which: str) -> str:
    """How a learner takes the repository's ``lesson`` (``which``: what to call it) over their copy."""
    if lesson.suffix == ".ipynb":
        return f"make reset-lesson LESSON={lesson.name.split('-')[0]} takes {which} (your copy is kept in earlier-runs/)"
    return f"copy {lesson.relative_to(ROOT)} over it to take {which}"


def report(copies: Path) -> list[str]:
    """One line per copy in ``copies`` that needs the repository's lesson, and how to take it."""
    lines = []
    for lesson in sorted(LESSONS.iterdir()):
        copy = copies / lesson.name
        if not copy.is_file():
            continue
        lacking = missing(code_of(copy)) if lesson.suffix == ".ipynb" else []
        if lacking:
            shown = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
            lines.append(f"make lessons: {copy} is from an older kittylab: it imports {shown}, which this kittylab no"
                         f" longer has, so it would stop at its first import: {how_to_take(lesson, 'the current lesson')}")
        elif lesson.stat().st_mtime > copy.stat().st_mtime and lesson.read_bytes() != copy.read_bytes():
            lines.append(f"make lessons: {copy} is older than the repository's lesson (it changed since your copy):"
                         f" {how_to_take(lesson, 'the new one')}")
    return lines

if __name__ == "__main__":
    for line in report(Path(sys.argv[1])):
        print(line)
