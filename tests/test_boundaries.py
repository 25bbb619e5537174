"""Import boundaries: GL and window code stay in their few files; the engine never imports systems."""

import ast
import sys
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
