import os
import pkgutil
import subprocess
import sys

import app


def test_importing_app_does_not_import_torch():
    code = (
        "import sys, app, app.main, engine; bad = [m for m in ('torch', 'onnxruntime') if m in sys.modules]; "
        "print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_app_module_imports_an_ml_runtime_at_import_time():
    """The window must appear before the model loads: torch / onnxruntime load only in the pipeline thread."""
    modules = sorted(info.name for info in pkgutil.walk_packages(app.__path__, "app."))
    assert {"app.window", "app.explaining.worker", "app.playback.sources", "app.widgets.view_grid"} <= set(modules)
    code = (
        f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
        "bad = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'timm') if m in sys.modules]\n"
        "print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
