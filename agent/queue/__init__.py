"""Store-and-forward queues: one transaction-shaped interface, a disk and a memory implementation."""

from agent.queue.base import (
    CommitResult,
    DurableQueue,
    QueueError,
    QueueStats,
    Record,
    RecordTooLargeError,
    StorageError,
    Tx,
)
from agent.queue.disk import SegmentQueue
from agent.queue.memory import MemoryQueue

__all__ = [
    "CommitResult",
    "DurableQueue",
    "MemoryQueue",
    "QueueError",
    "QueueStats",
    "Record",
    "RecordTooLargeError",
    "SegmentQueue",
    "StorageError",
    "Tx",
]
