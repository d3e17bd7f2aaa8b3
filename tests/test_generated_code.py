"""The committed Python and TypeScript stubs are exactly what protos/ generates."""

import subprocess
import sys

from tests.conftest import REPO


def test_generated_stubs_are_up_to_date():
    result = subprocess.run([sys.executable, "tools/genproto.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"stale generated code, run `python tools/genproto.py`:\n{result.stdout}{result.stderr}"
