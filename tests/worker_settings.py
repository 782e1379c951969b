"""Settings of a real Celery worker started by a test (tests/worker.py): the test settings, tasks queued.

``portal.test_settings`` runs tasks in-process; a worker test needs them on the broker instead. The
database (``DATABASE_URL``), the broker (``CELERY_BROKER_URL``) and the visibility timeout
(``CELERY_VISIBILITY_TIMEOUT``) come from the environment the helper passes to the worker, and so does
the test's own queue (``CELERY_TEST_QUEUE``), which the worker also uses for the steps it queues itself.
"""

import os

from portal.test_settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TEST_QUEUE", "celery")
