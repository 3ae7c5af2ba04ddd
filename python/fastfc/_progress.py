"""Progress as the engine reports it, shown by Python (Jupyter never shows what the engine's
threads would print to fd 1): a tqdm bar when tqdm is installed (``tqdm.auto``: a widget in
notebooks, a text bar in terminals), plain lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Steps done out of ``total``, with a line per finished run."""

    def __init__(self, verbose: int = 1):
        self.verbose = verbose
        self.bar = None
        self.total = 0
        self.done = 0
        self.started = time.monotonic()
        self.last_line = 0.0

    def start(self, header: str, total: int, unit: str = "steps") -> None:
        self.total = total
        if self.verbose <= 0:
            return
        print(header, file=sys.stderr)
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self.bar = tqdm(total=total, unit=unit, unit_scale=True, dynamic_ncols=True,
                            mininterval=0.5, file=sys.stderr)

    def steps(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.verbose > 0 and time.monotonic() - self.last_line > 10:
            self.last_line = time.monotonic()
            pct = 100.0 * self.done / max(self.total, 1)
            print(f"  {self.done}/{self.total} steps ({pct:.0f}%), "
                  f"{time.monotonic() - self.started:.0f}s", file=sys.stderr)

    def line(self, text: str) -> None:
        if self.verbose <= 0:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
