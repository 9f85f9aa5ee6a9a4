"""Release expired reservations from inside a server process, on a timer.

On for the embedded default (one process, no cron); with several processes in production a
cron job or systemd timer running ``reservations_expire`` every minute does the same, and both
may run at once: expiry takes each order's row lock, so every reservation is released once.
"""

import logging
import threading

from django.db import close_old_connections, connections

from .services import reservations_expire

logger = logging.getLogger("creatorflow.expiry")


class ExpiryTimer(threading.Thread):
    def __init__(self, *, interval: float = 60.0):
        super().__init__(name="creatorflow-expiry", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()
        self.runs = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            close_old_connections()
            try:
                released = reservations_expire()
            except Exception:
                logger.exception("reservation expiry failed; trying again in %ss", self.interval)
            else:
                if released:
                    logger.info("expiry released=%d", released)
            finally:
                self.runs += 1
                connections.close_all()

    def stop(self) -> None:
        self.stopped.set()


def expiry_timer_start(*, interval: float = 60.0) -> ExpiryTimer:
    """Start releasing expired reservations every ``interval`` seconds in this process."""
    timer = ExpiryTimer(interval=interval)
    timer.start()
    return timer
