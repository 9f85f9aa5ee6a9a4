"""A one-line progress bar for long management commands, drawn only on a terminal."""


class ProgressBar:
    def __init__(self, stream, total: int, width: int = 30):
        self.stream, self.total, self.width, self.shown = stream, total, width, -1
        self.enabled = hasattr(stream, "isatty") and stream.isatty()

    def update(self, done: int, total: int | None = None) -> None:
        """Redraw the bar for ``done`` of ``total`` items when the percentage changed."""
        self.total = total if total is not None else self.total
        percent = 100 * done // max(self.total, 1)
        if not self.enabled or percent == self.shown:
            return
        self.shown = percent
        filled = percent * self.width // 100
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} ({percent}%)", ending="")
        self.stream.flush()
        if done >= self.total:
            self.stream.write("")
