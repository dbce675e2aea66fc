"""The layers a newcomer sees in the tree, and the rule that each only calls down (README: Architecture)."""

from __future__ import annotations

import ast
from pathlib import Path

import kittylab

PACKAGE = Path(kittylab.__file__).parent
#: Lowest first. A module may import its own layer and the layers before it, never a later one.
LAYERS = ["errors", "pki", "workspace", "render", ("workshop", "net"), ("ui", "cli")]


def _rank(module: str) -> int:
    """The layer of ``kittylab.X...`` (the package's own __init__ and __main__ face users: top)."""
    top = module.split(".")[1] if "." in module else ""
    for rank, layer in enumerate(LAYERS):
        if top in ((layer,) if isinstance(layer, str) else layer):
            return rank
    return len(LAYERS)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The kittylab modules ``path`` imports (relative imports resolved), lazily or not."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("kittylab"):
                # ``from ..workspace import store`` imports the module kittylab.workspace.store
                found |= {f"{target}.{alias.name}" for alias in node.names} | ({target} if node.module else set())
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("kittylab")}
    return found


def test_every_module_sits_in_a_layer():
    stray = [p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "errors")]
    assert stray == [], f"modules outside the layers: {stray}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    named = {name for layer in LAYERS for name in ((layer,) if isinstance(layer, str) else layer)}
    assert folders <= named, folders - named


def _dynamic_imports(path: Path) -> set[str]:
    """``importlib.import_module("kittylab.x")`` and ``__import__("kittylab.x")``: imports the AST check above cannot see."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            found |= {arg.value for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("kittylab")}
    return found


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_each_layer_only_calls_down():
    """Down only; peers (workshop and net, ui and cli) do not import each other; inside the package
    nothing imports the package root (which imports everything)."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module in ("kittylab", "kittylab.__main__"):
            continue
        for target in sorted(_imports(path) | _dynamic_imports(path)):
            if target == "kittylab" or _rank(target) == len(LAYERS):
                wrong.append(f"{module} imports the package root ({target}): import the module that defines it")
            elif _rank(target) > _rank(module):
                wrong.append(f"{module} imports {target}, a layer above it")
            elif _rank(target) == _rank(module) and _top(target) != _top(module):
                wrong.append(f"{module} imports its peer {target}")
    assert wrong == []


def test_only_the_state_layers_open_databases():
    """The workspace's store (and the workshop's ledger of participants) are the only SQLite files."""
    allowed = ("kittylab.workspace.", "kittylab.workshop.ledger")
    users = [_module_name(p) for p in PACKAGE.rglob("*.py")
             if "sqlite3" in _standard_imports(p) and not _module_name(p).startswith(allowed)]
    assert users == []


def _standard_imports(path: Path) -> set[str]:
    """The top-level names of what ``path`` imports: ``import sqlite3``, ``from sqlite3 import connect``,
    ``import_module("sqlite3")``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            found |= {str(arg.value).split(".")[0] for arg in node.args if isinstance(arg, ast.Constant)}
    return found


def _private_members_of_workspace() -> set[str]:
    """The names of Workspace's private methods and attributes (``_store``, ``_writing``, ``_audit``, ...)."""
    tree = ast.parse((PACKAGE / "workspace" / "workspace.py").read_text())
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Workspace")
    names = {node.name for node in cls.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {node.attr for node in ast.walk(cls) if isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Name) and node.value.id == "self"}
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def _reaches_into_a_workspace(path: Path, private: set[str]) -> list[str]:
    """Private members of a Workspace reached from ``path``: ``anything._store`` (any of Workspace's private
    names, on anything but ``self``), ``workspace._x`` (any private name on a variable so called) and
    ``workspace.store`` (the store's old public name)."""
    def is_workspace(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id in ("workspace", "ws")) or (
            isinstance(node, ast.Attribute) and node.attr == "workspace")

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            continue
        private_name = node.attr.startswith("_") and not node.attr.startswith("__")
        if node.attr in private or (is_workspace(node.value) and (private_name or node.attr == "store")):
            found.append(f"{node.lineno}: .{node.attr}")
    return found


def _imported_names(path: Path) -> list[tuple[str, str, str]]:
    """(module, name, the name it is bound to) for every ``from kittylab... import name [as bound]`` in ``path``
    (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("kittylab")):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found += [(target, alias.name, alias.asname or alias.name) for alias in node.names]
    return found


def _store_names() -> set[str]:
    tree = ast.parse((PACKAGE / "workspace" / "store.py").read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))} - {"AuditEntry"}


def test_private_names_stay_in_their_package():
    """A ``_name`` is its package's own: no other layer imports it or reaches it through the module
    (``_write_files``, ``deploy._settings``), nor
    the store's classes through a re-export (``from ..workspace.workspace import Store``); and no private
    member of a Workspace is reached by its name in a string (``getattr(w, "_store")``, ``vars(w)["_store"]``).
    (``AuditEntry``, what ``Workspace.audit_log`` returns, is the store's one public word.)"""
    store, private = _store_names(), _private_members_of_workspace()
    assert "Store" in store
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for target, name, _ in _imported_names(path):
            if _top(target) != _top(module) and (name.startswith("_") or name in store):
                wrong.append(f"{module} imports {target}.{name}")
        modules = {bound: f"{target}.{name}" for target, name, bound in _imported_names(path)
                   if (PACKAGE.parent / target.replace(".", "/") / f"{name}.py").exists() and _top(target) != _top(module)}
        tree = ast.parse(path.read_text())
        wrong += [f"{module}:{node.lineno} uses {modules[node.value.id]}.{node.attr}" for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                  and node.attr.startswith("_") and not node.attr.startswith("__")]
        if _top(module) != "workspace":
            wrong += [f"{module}:{node.lineno} names {node.value!r}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and node.value in private]
    assert wrong == []


#: What writes, moves or deletes a file or a folder.
_WRITERS = {"write_text", "write_bytes", "mkdir", "rename", "replace", "unlink", "rmdir", "touch", "chmod",
            "write_atomically", "rmtree", "move", "copy", "copy2", "copyfile", "copytree", "makedirs", "remove",
            "save_key", "save_csr", "save_certificate"}


def _in_a_workspace(node: ast.AST) -> bool:
    """Whether ``node`` spells a path inside a workspace: ``workspace.home ...`` or ``workspace.path(...)``."""
    def is_workspace(value: ast.expr) -> bool:
        return (isinstance(value, ast.Name) and value.id in ("workspace", "ws")) or (
            isinstance(value, ast.Attribute) and value.attr == "workspace")

    return any((isinstance(part, ast.Attribute) and part.attr == "home" and is_workspace(part.value))
               or (isinstance(part, ast.Call) and isinstance(part.func, ast.Attribute) and part.func.attr == "path"
                   and is_workspace(part.func.value)) for part in ast.walk(node))


def test_only_the_workspace_package_writes_into_a_workspace():
    """No other layer writes, moves or deletes a file it spells inside a workspace (``(ws.home / "x").write_text``,
    ``shutil.rmtree(workspace.home / ...)``, ``save_key(key, workspace.path(...))``): it asks the workspace. A
    path kept in a variable first escapes this reading of the code; the crash and write-protocol tests
    judge what is actually written."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _top(_module_name(path)) == "workspace":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            target = node.func.value if isinstance(node.func, ast.Attribute) and name not in ("save_key", "save_csr") else None
            spelled = [target] if target is not None and name in _WRITERS else []
            spelled += node.args[:2] if name in _WRITERS else []
            if any(_in_a_workspace(part) for part in spelled):
                wrong.append(f"{_module_name(path)}:{node.lineno} {name}")
    assert wrong == []


def test_the_store_and_the_write_protocol_are_private_to_the_workspace():
    """Only the workspace package imports the store or reaches a Workspace's private members (its store,
    its write protocol): every other layer changes state through a public Workspace method."""
    private = _private_members_of_workspace()
    assert {"_store", "_writing", "_audit"} <= private
    outside = [p for p in PACKAGE.rglob("*.py") if not _module_name(p).startswith("kittylab.workspace")]
    found = {_module_name(p): _reaches_into_a_workspace(p, private)
             + [f"imports {t}" for t in sorted(_imports(p)) if t.startswith("kittylab.workspace.store")]
             for p in outside}
    assert {module: what for module, what in found.items() if what} == {}


#: The layers below the edges: what they say reaches a notebook user as much as a terminal user.
CORE = ("errors", "pki", "workspace", "render", "workshop", "net")


def _core_texts(path: Path) -> list[str]:
    """The prose in ``path``: every string (an f-string as a whole) with a space in it, docstrings aside.
    That is each error message, warning, hint and constant a user may read; a lone ``--flag`` is an
    argument to another program (curl's)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts.append(node.value)
    return [text for text in texts if " " in text.strip()]


def _command_line_words():
    """A pattern for what only a terminal user can act on: ``--a-flag`` or ``kittylab COMMAND`` (the CLI's own
    commands; not "a kittylab backup", a noun, nor a generated file's "written by kittylab webconfig")."""
    import argparse
    import re

    from kittylab.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    names = "|".join(sorted(map(re.escape, commands), key=len, reverse=True))
    return re.compile(rf"(?<![\w-])--(?!jp-)[a-z]|(?<!\ba )(?<!written by )\bkittylab (?:--home \S+ )?(?:{names})\b")


def test_the_core_speaks_domain_words_and_the_command_line_adds_flags():
    """Below the edges, errors, warnings and hints name remedies (``fix=``, or a warning's kind the command
    line adds its hint to), never a flag or a command to type: in a notebook there is none."""
    words = _command_line_words()
    leaks = [f"{_module_name(p)}: {text}" for p in sorted(PACKAGE.rglob("*.py"))
             if _top(_module_name(p)) in CORE for text in _core_texts(p) if words.search(text)]
    assert leaks == []


def test_the_pages_kittylab_renders_speak_domain_words_too():
    """The HTML and SVG templates (cards, handouts, the gallery, the tutorial's tables, the trust diagram) are read in a notebook or a
    browser: no flag or command there either. (The nginx and Apache configurations are for the admin who
    runs the server, and name the commands that keep it current on purpose.)"""
    words = _command_line_words()
    leaks = [f"{path.name}:{number}: {line.strip()}" for path in sorted((PACKAGE / "render" / "templates").glob("*.*")) if path.suffix in (".html", ".svg")
             for number, line in enumerate(path.read_text().splitlines(), 1) if words.search(line)]
    assert leaks == []


def test_the_check_for_command_line_words_catches_them():
    words = _command_line_words()
    assert words.search("give the workshop's host (init --permit-dns HOST also excludes every IP address)")
    assert words.search("16 or more is better (kittylab passphrase CA changes it)")
    assert words.search("kittylab --home /tmp/x deploy")
    assert not words.search("kittylab does not hold lena's private key") and not words.search("var(--jp-ui-font-color1)")
    assert not words.search("x is not a kittylab backup") and not words.search("# written by kittylab export-openssl-db")


def test_a_remedy_reaches_the_notebook_in_words_and_the_terminal_as_a_command(tmp_path):
    from kittylab import KittylabError, Workspace
    from kittylab.cli.options import command_line_fix

    workspace = Workspace(tmp_path / "ws")
    try:
        workspace.ca_name
    except KittylabError as exc:
        error = exc
    assert "--" not in str(error) and "kittylab init" not in str(error)
    assert command_line_fix(error) == " (kittylab init)"


def test_one_handler_shows_a_refusal_in_a_notebook_cell():
    """Only render.display installs IPython's handler for a KittylabError (when two did, the last import won)."""
    installers = [_module_name(p) for p in sorted(PACKAGE.rglob("*.py"))
                  if any(getattr(node.func, "attr", None) == "set_custom_exc"
                         for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.Call))]
    assert installers == ["kittylab.render.display"]
