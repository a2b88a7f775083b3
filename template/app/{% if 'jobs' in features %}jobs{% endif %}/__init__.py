"""Background jobs: a durable queue on Redis streams (taskiq), worked off by `taskiq worker`.

The web process sees only `JobQueue` (queue.py) and `JobStore` (store.py), which import nothing
from taskiq: the broker is built on the first enqueue, so importing the app stays cheap. The
worker side is broker.py (broker, retries, status), tasks.py (the job functions) and worker.py
(the entry point: `taskiq worker app.jobs.worker:broker`).
"""

from app.jobs.queue import JobQueue, JobQueueUnavailableError
from app.jobs.store import JobRecord, JobState, JobStore

__all__ = ["JobQueue", "JobQueueUnavailableError", "JobRecord", "JobState", "JobStore"]
