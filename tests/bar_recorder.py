"""A progress-bar factory that records what the work reported, for tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RecordedBar:
    """One bar: its total, its description, every update and whether it closed."""

    total: int
    description: str
    updates: list[int] = field(default_factory=list)
    closed: bool = False

    def update(self, n: int = 1) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


@dataclass
class BarRecorder:
    """Pass as ``progress=``; each bar the work makes is kept in ``bars``."""

    bars: list[RecordedBar] = field(default_factory=list)

    def __call__(self, total: int, description: str) -> RecordedBar:
        bar = RecordedBar(total, description)
        self.bars.append(bar)
        return bar
