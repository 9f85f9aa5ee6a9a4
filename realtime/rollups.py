"""Pure helpers for the order rollups: which quarter-hour buckets an order counts in."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

BUCKET_MINUTES = 15


def bucket_start(moment: datetime) -> datetime:
    """Return the start of the UTC quarter hour holding ``moment``."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % BUCKET_MINUTES, second=0, microsecond=0)


def processing_seconds(placed_at: datetime, shipped_at: datetime) -> int:
    return max(0, int((shipped_at - placed_at).total_seconds()))


@dataclass(frozen=True)
class OrderFigures:
    """What one order adds to its creator's rollups."""

    placed_at: datetime
    shipped_at: datetime | None
    revenue: Decimal

    @classmethod
    def of(cls, order) -> "OrderFigures":
        revenue = order.total_amount if order.status == "COMPLETED" else Decimal(0)
        return cls(placed_at=order.placed_at, shipped_at=order.shipped_at, revenue=Decimal(revenue))

    def bucket_rows(self) -> dict[datetime, tuple[int, int, int]]:
        rows: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0])
        rows[bucket_start(self.placed_at)][0] += 1
        if self.shipped_at is not None:
            row = rows[bucket_start(self.shipped_at)]
            row[1] += 1
            row[2] += processing_seconds(self.placed_at, self.shipped_at)
        return {start: tuple(row) for start, row in rows.items()}

