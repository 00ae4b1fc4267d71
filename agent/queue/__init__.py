"""Store-and-forward queues: one transaction-shaped interface, a disk and a memory implementation."""

from agent.queue.disk import SegmentQueue
from agent.queue.memory import MemoryQueue
from roadpulse.queue import (
    CommitResult,
    DurableQueue,
    QueueError,
    QueueStats,
    Record,
    RecordTooLargeError,
    StorageError,
    Tx,
)

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
