import subprocess
import sys


def test_importing_app_does_not_import_torch():
    code = "import sys, app, app.main, engine; bad = [m for m in ('torch', 'onnxruntime') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
