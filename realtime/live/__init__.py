"""LIVE sessions: a seller's LIVE stream, started and ended by hand, and the sale it brought."""
