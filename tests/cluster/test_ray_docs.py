"""The Ray snippet of README/docs and examples/ray_cluster.py run as written.

Each runs as its own driver process joined to the session's cluster through
``RAY_ADDRESS`` (which ``ray.init()`` honours), so no second cluster is started.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(path: Path, ray_address: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": ray_address},
        cwd=path.parent,
    )
    assert done.returncode == 0, done.stderr
    # Ray forwards the actors' log lines to the driver's output: keep the program's own.
    return [line for line in done.stdout.splitlines() if not line.startswith(("(", "\x1b"))]


def test_the_ray_snippet_answers(ray_address: str, tmp_path: Path) -> None:
    """The docs' Ray snippet (the README's too) serves a scheduler and gets the answer."""
    docs = (ROOT / "docs" / "integrations.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, re.DOTALL)
    (snippet,) = [b for b in blocks if "actor_pool" in b]  # (the processes recipe has its test)
    script = tmp_path / "snippet.py"
    script.write_text(snippet + "\n\nray.init()\nasyncio.run(main())\nray.shutdown()\n")
    assert _run(script, ray_address)[-1:] == ["hello: 20 steps"]


def test_the_ray_cluster_example_preempts_and_resumes(ray_address: str) -> None:
    """examples/ray_cluster.py answers the chat, finishes the report after one preemption."""
    lines = _run(ROOT / "examples" / "ray_cluster.py", ray_address)
    assert lines[:2] == ["chat: hi0 hi1 hi2", "report: 40 words"]
    assert re.fullmatch(r"preempted 1 time\(s\); \d+ decoding steps for 43 words", lines[2])
