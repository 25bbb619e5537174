"""Boundaries: GL and window code stay in their few files (imported and used); the engine never
imports systems; docstrings and comments name files and functions that exist."""

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_MODULES = {"glfw", "moderngl", "imgui_bundle", "OpenGL"}
# Pure math: torch, numpy, scipy, scikit-image and the standard library, nothing of the app's.
PURE_ALLOWED = {"torch", "numpy", "scipy", "skimage"} | set(sys.stdlib_module_names)


def _project_files():
    for folder in ("engine", "systems", "components"):
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield ROOT / "main.py"


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


# Attributes only GL objects have (moderngl contexts, framebuffers, textures; a window's context).
GL_ATTRIBUTES = {"ctx", "screen", "simple_framebuffer", "framebuffer", "texture", "texture3d", "glo",
                 "vertex_array", "create_context", "create_standalone_context"}
PATH_REF = re.compile(r"(?<![\w/.])((?:engine|systems|components|tests|bench|assets)/[\w/.-]*\w)(?::(\w+))?")
DOTTED_REF = re.compile(r"(?<![\w/.])((?:engine|systems|components)(?:\.\w+)+)")


def _may_use_platform(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return (rel.startswith("engine/platform/") or rel.startswith("systems/ui/")
            or (rel.startswith("systems/render/") and path.name.startswith("gl_")))


def test_only_platform_and_presenter_files_import_gl_window_or_imgui():
    offenders = [f"{p.relative_to(ROOT)} imports {sorted(_imported_roots(p) & PLATFORM_MODULES)}"
                 for p in _project_files()
                 if _imported_roots(p) & PLATFORM_MODULES and not _may_use_platform(p)]
    assert offenders == []


def test_engine_never_imports_systems():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "engine").rglob("*.py")
                 if "systems" in _imported_roots(p)]
    assert offenders == []


def test_components_are_plain_data():
    offenders = [f"{p.relative_to(ROOT)}: {sorted(_imported_roots(p) & (PLATFORM_MODULES | {'systems'}))}"
                 for p in (ROOT / "components").rglob("*.py")
                 if _imported_roots(p) & (PLATFORM_MODULES | {"systems"})]
    assert offenders == []


def test_pure_ops_import_only_math_libraries():
    offenders = [f"{p.relative_to(ROOT)}: {sorted(_imported_roots(p) - PURE_ALLOWED)}"
                 for p in (ROOT / "systems").rglob("ops.py")
                 if _imported_roots(p) - PURE_ALLOWED]
    assert offenders == []


def test_the_boundary_check_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import moderngl\nfrom imgui_bundle import imgui\nimport numpy as np\n")
    assert _imported_roots(sample) == {"moderngl", "imgui_bundle", "numpy"}


def _gl_rooms() -> set[str]:
    """Modules (dotted) of the rooms that import a GL, window or ImGui library at module level."""
    rooms = set()
    for path in _project_files():
        rel = path.relative_to(ROOT).with_suffix("")
        tree = ast.parse(path.read_text())
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        if top & PLATFORM_MODULES:
            rooms.add(".".join(rel.parts))
    return rooms


def _gl_uses(path: Path, rooms: set[str]) -> list[str]:
    """GL attributes used, and GL room modules imported at module level (which would load GL for
    every importer), in one file."""
    tree = ast.parse(path.read_text())
    uses = [f"line {n.lineno}: .{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and n.attr in GL_ATTRIBUTES]
    uses += [f"line {n.lineno}: imports {n.module}" for n in tree.body
             if isinstance(n, ast.ImportFrom) and n.module in rooms]
    return uses


def test_gl_objects_are_used_only_inside_the_gl_rooms():
    rooms = _gl_rooms()
    offenders = [f"{p.relative_to(ROOT)} {use}" for p in _project_files() if not _may_use_platform(p)
                 for use in _gl_uses(p, rooms)]
    assert offenders == []


def test_the_gl_check_sees_uses_not_only_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from systems.render.gl_present import GLPresenter\n\n"
                      "def run(window):\n    target = window.ctx.screen\n")
    assert sorted(_gl_uses(sample, _gl_rooms())) == ["line 1: imports systems.render.gl_present",
                                                     "line 4: .ctx", "line 4: .screen"]


def _defined(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _path_problem(ref: str, name: str | None) -> str | None:
    """`ref` (a/b/c.py, a/b/c, or a/b/c.function) exists, and so does `name` in it."""
    path = ROOT / ref
    if not path.exists() and (ROOT / f"{ref}.py").is_file():
        path = ROOT / f"{ref}.py"
    elif not path.exists() and "." in Path(ref).name:
        stem, _, name = ref.rpartition(".")
        path = ROOT / f"{stem}.py"
    if not path.exists():
        return f"{ref} does not exist"
    if name and path.suffix == ".py" and name not in _defined(path):
        return f"{path.relative_to(ROOT)} defines no {name}"
    return None


def _dotted_problem(ref: str) -> str | None:
    """`ref` (package.module.name...) names a module, and the first name after it is defined there."""
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:i])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            rest = parts[i:]
            return f"{'.'.join(parts[:i])} defines no {rest[0]}" if rest and rest[0] not in _defined(module) else None
    return f"{ref}: no such module"


def _prose(path: Path):
    """The docstrings and comments of a file."""
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield ast.get_docstring(node, clean=False) or ""
    yield from (t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT)


def _reference_problems(path: Path) -> list[str]:
    """What the docstrings and comments of a file name that does not exist."""
    problems = []
    for text in _prose(path):
        for match in PATH_REF.finditer(text):
            ref = match.group(1).rstrip(".")
            if not ref.startswith("bench/results/"):              # benchmark outputs, written by a run
                problems.append(_path_problem(ref, match.group(2)))
        problems += [_dotted_problem(match.group(1)) for match in DOTTED_REF.finditer(text)]
    return [p for p in problems if p]


def test_docstrings_and_comments_name_files_and_functions_that_exist():
    files = [*_project_files(), *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "bench").glob("*.py"))]
    assert [f"{path.relative_to(ROOT)}: {p}" for path in files for p in _reference_problems(path)] == []


def test_the_reference_check_sees_stale_names(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""See systems/inverse/ops.py:coverage_mask, systems/viewer/nowhere.py,\n'
                      'systems/inverse/ops.py:gone_function and systems.inverse.ops.NoSuchThing."""\n'
                      "# engine/io.atomic_dir and components.resources.MaskGrid exist\n")
    assert _reference_problems(sample) == ["systems/viewer/nowhere.py does not exist",
                                           "systems/inverse/ops.py defines no gone_function",
                                           "systems.inverse.ops defines no NoSuchThing"]
