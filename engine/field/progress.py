"""A progress bar for field training (iterations, loss, PSNR, resolution, ETA) on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from engine.field.train import Progress


@contextlib.contextmanager
def training_bar(desc: str) -> Iterator[Progress]:
    """Yield a `progress` callback for train_field that drives a tqdm bar over the training's
    progress (the budget, iterations or time, that is further along). The bar appears with the
    first report, so a field loaded from a cache shows none."""
    from tqdm import tqdm

    bar = None

    def progress(info: dict) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=100, desc=desc, unit="%",
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
        bar.update(max(0, int(100 * min(info["progress"], 1.0)) - bar.n))
        bar.set_postfix(it=info["iteration"], loss=f"{info['loss']:.4f}", psnr=f"{info['psnr']:.2f}",
                        res="x".join(map(str, info["resolution"])), refresh=False)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
