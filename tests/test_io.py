"""Result files survive kill -9 at any moment: the old file or the new one, never a torn one."""

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

IO_MODULE = Path(__file__).resolve().parents[1] / "toponets_exp" / "io.py"

# The writer loads toponets_exp/io.py by its path: the module itself (standard library only), without the package's
# __init__, whose imports (Lightning, Hydra) would cost every one of the 50 writers seconds before it writes.
WRITER = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("toponets_exp_io", sys.argv[2])
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)
write_text = io.write_text
path = Path(sys.argv[1])
texts = [json.dumps({"version": v, "payload": [v] * 2_000_000}) for v in (0, 1)]
write_text(path, texts[1])
print("ready", flush=True)
i = 0
while True:
    write_text(path, texts[i % 2])
    i += 1
"""
PLAIN = WRITER.replace("    write_text(path, texts[i % 2])", "    path.write_text(texts[i % 2])")
assert PLAIN != WRITER


def kill_while_writing(tmp_path, source: str, kills: int) -> list[str]:
    """Start a writer loop, kill -9 it at random moments; what the file held after each kill."""
    path = tmp_path / "summary.json"
    rng = random.Random(0)
    seen = []
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", source, str(path), str(IO_MODULE)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.random() * 0.5)
        proc.kill()
        proc.wait()
        try:
            seen.append(f"version {json.loads(path.read_text())['version']}")
        except json.JSONDecodeError:
            seen.append("torn")
    return seen


@pytest.mark.slow
def test_atomic_write_is_never_torn(tmp_path):
    seen = kill_while_writing(tmp_path, WRITER, kills=25)
    assert seen and set(seen) <= {"version 0", "version 1"}


@pytest.mark.slow
def test_the_check_catches_a_plain_write(tmp_path):
    """The same loop with a plain write_text does tear the file: the test above can fail."""
    assert "torn" in kill_while_writing(tmp_path, PLAIN, kills=25)
