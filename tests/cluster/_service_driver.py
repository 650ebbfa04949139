"""One process of a web service sharing a scheduler: docs/integrations.md's recipe, run.

``python _service_driver.py ADDRESS NAME``: joins the cluster with no namespace (as a
``uvicorn --workers`` process would after ``ray.init(address="auto")``), runs the docs'
``ray-processes`` snippet (scheduler name replaced by NAME) as this program's own code,
starts its FastAPI app's lifespan, posts to ``/chat`` and prints the reply.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import ray
from asgi_lifespan import LifespanManager

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def snippet(name: str) -> str:
    text = DOCS.read_text()
    (code,) = re.findall(r"<!-- snippet: ray-processes -->\n```python\n(.*?)```", text, re.S)
    return str(code).replace('"assistant"', repr(name))


async def main(app: Any) -> None:
    # No startup deadline (its default is 5 s): starting a Ray actor on a loaded machine
    # can take longer; the test bounds the whole process instead.
    async with LifespanManager(app, startup_timeout=None, shutdown_timeout=None) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.post("/chat")
            print(response.status_code, response.json()["reply"], flush=True)


if __name__ == "__main__":
    address, name = sys.argv[1:]
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    exec(compile(snippet(name), str(DOCS), "exec"))  # the recipe, as __main__'s own code
    asyncio.run(main(globals()["app"]))
    ray.shutdown()
