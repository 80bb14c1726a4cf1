"""One comparison set-up (device + local model) that fetches and compares frame after frame.

Blocking calls: run it from a worker thread (the console does) or a script (`edge-console compare`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from app.core.comparison import FrameComparison, class_mapping, compare_frame
from app.core.detector import Detector
from app.core.errors import ModelError
from app.core.model_library import ModelLibrary

from .fetch import fetch_frame, fetch_info


def pick_local_model(info: dict, library: ModelLibrary, explicit: Path | None) -> Path:
    """The model to run here: the one given, else the library's copy of what the device runs."""
    if explicit is not None:
        return explicit
    m = info["model"]
    found = library.find(m.get("name", ""), m.get("version", ""), m.get("sha256"))
    if found is None:
        folders = ", ".join(str(f) for f in library.folders) or "no folders"
        raise ModelError(f"no local copy of the device's model {m.get('name')} {m.get('version')} "
                         f"(sha256 {str(m.get('sha256'))[:12]}...) in the model library ({folders}); "
                         "add it from a file or USB stick, or choose another model to compare against")
    return found.path


class CompareSession:
    def __init__(self, base_url: str, library: ModelLibrary, model_path: Path | None = None, iou: float = 0.5,
                 intra_op_threads: int | None = None):
        self.base_url = base_url.rstrip("/")
        self.iou = iou
        self._loop = asyncio.new_event_loop()
        self._http: aiohttp.ClientSession | None = None
        self.last_seq = 0
        try:
            self.info = self._run(self._info())
            self.model_path = pick_local_model(self.info, library, model_path)
            self.detector = Detector(self.model_path, intra_op_threads=intra_op_threads)
            self.mapping = class_mapping(self.info["model"]["classes"], self.detector.spec.class_names)
        except BaseException:
            self.close()
            raise

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def _info(self) -> dict:
        return await fetch_info(await self._session(), self.base_url)

    async def _frame(self):
        return await fetch_frame(await self._session(), self.base_url, self.last_seq)

    def next_frame(self, keep_image: bool = True) -> FrameComparison:
        """Fetch the device's next inferred frame and compare it with the local model."""
        header, image = self._run(self._frame())
        self.last_seq = header.seq
        return compare_frame(image, header, self.detector, self.mapping, iou=self.iou, keep_image=keep_image)

    def close(self) -> None:
        if self._http is not None:
            self._run(self._http.close())
            self._http = None
        self._loop.close()

    def __enter__(self) -> CompareSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
