"""A user's application process: a default Runtime that runs one saga, or waits for it.

``python userapp.py URL run ID`` runs saga ``ID`` with ``rt.run``; ``... wait ID`` waits
for it and prints its final status. Nothing here starts a worker explicitly.
"""

from __future__ import annotations

import asyncio
import sys

import crashapp

import sagakit as sk


async def main(url: str, mode: str, saga_id: str) -> None:
    async with sk.Runtime(url, sagas=crashapp.sagas, lease_seconds=1.0) as rt:
        if mode == "run":
            record = await rt.run("crashy", {"hang": "s1"}, saga_id=saga_id)
        else:
            record = await rt.wait(saga_id, timeout=120)
        print(record.status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
