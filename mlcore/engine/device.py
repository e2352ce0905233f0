from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Batch = TypeVar("Batch")


def pick_device(preference: str = "auto") -> str:
    """CUDA when there is one (or when asked), else CPU."""
    import torch

    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but no GPU is visible to this worker.")
    return preference


def describe_device(preference: str = "auto") -> dict[str, object]:
    """What this process would run on, for the dashboard's workers panel: the device, and a GPU's name and memory."""
    import torch

    try:
        device = pick_device(preference)
    except RuntimeError as exc:
        return {"device": "none", "error": str(exc)}
    if not device.startswith("cuda"):
        return {"device": "cpu", "threads": torch.get_num_threads()}
    index = torch.device(device).index or 0
    properties = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    return {
        "device": device,
        "name": properties.name,
        "memory_gb": round(total / 2**30, 1),
        "free_gb": round(free / 2**30, 1),
    }


def run_batches(work: Callable[[Batch], None], batches: Iterable[Batch], *, device: str) -> None:
    """Run inference `work` on every batch, in inference mode.

    On a CPU with several threads, one batch per thread, each op single-threaded, instead of one batch at a time
    with every op split across the threads: a title is ~10-20 tokens, so each matrix product is too small to split
    well, and whole batches side by side keep every core busy (1.2-1.5x the titles/s on 2 cores, bench/rescore.py).
    The order the batches finish in does not matter: `work` writes its own rows. On a GPU, one at a time.
    """
    import torch

    threads = torch.get_num_threads()
    if not device.startswith("cpu") or threads < 2:
        with torch.inference_mode():
            for batch in batches:
                work(batch)
        return

    def one(batch: Batch) -> None:
        with torch.inference_mode():  # thread-local: each pool thread needs its own
            work(batch)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inference") as pool:
            running: deque[Future[None]] = deque()
            for batch in batches:
                running.append(pool.submit(one, batch))
                # A bounded look-ahead: padded batches are built only a little before a thread is free for them.
                if len(running) >= 2 * threads:
                    running.popleft().result()
            for future in running:
                future.result()
    finally:
        torch.set_num_threads(threads)


def release_memory() -> None:
    """Give memory held by dropped models back: Python's cycles first, then PyTorch's CUDA cache (a training run
    started on a worker that scored with a cached model needs that GPU memory)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # a process that never imported torch holds no GPU memory
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
