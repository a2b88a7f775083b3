"""The worker's entry point: `taskiq worker app.jobs.worker:broker`.

It registers the job functions of app/jobs/tasks.py on the broker, and opens what they share
(the database engine, Redis) once per worker process.
"""

from taskiq import TaskiqEvents, TaskiqState

from app.core.config import get_settings
from app.core.logging import configure_logging
from app.jobs.broker import create_broker
from app.jobs.resources import JobResources
from app.jobs.tasks import TASKS, schedules

settings = get_settings()
broker = create_broker(settings, worker=True)
_schedules = schedules(settings)
for _name, _function in TASKS.items():
    if _name in _schedules:
        broker.register_task(_function, task_name=_name, schedule=_schedules[_name])
    else:
        broker.register_task(_function, task_name=_name)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _open(state: TaskiqState) -> None:
    configure_logging(settings)
    JobResources.open(settings).install(state)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _close(state: TaskiqState) -> None:
    resources: JobResources = state.resources
    await resources.close()
