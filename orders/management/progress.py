"""Progress of long management commands: tqdm's bar with rate and ETA on a terminal, nothing otherwise.

Off a terminal (cron, a pipe, a log file) no bar is drawn; each command ends with one summary
line of its own instead. The bar goes to the command's stderr, so stdout keeps only results.
"""

from tqdm import tqdm


class _Unterminated:
    """Django's OutputWrapper ends every write with a newline; tqdm redraws one line with \\r."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(text, ending="")

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """A progress bar for ``total`` items of ``unit``; ``update(done, total)`` moves it."""

    def __init__(self, stream, *, total: int | None = None, unit: str = "item", description: str = ""):
        terminal = hasattr(stream, "isatty") and stream.isatty()
        self.bar = tqdm(
            total=total or None,
            unit=unit,
            desc=description or None,
            file=_Unterminated(stream),
            disable=not terminal,
            dynamic_ncols=terminal,
            leave=True,
        )

    def update(self, done: int, total: int | None = None) -> None:
        """Show ``done`` of ``total`` items (the total may become known, or grow, on the way)."""
        if self.bar.disable:
            return
        if total and total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
