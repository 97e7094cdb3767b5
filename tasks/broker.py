"""Choose the Dramatiq broker from the settings.

* ``redis://…``  → RedisBroker (production; N workers on any number of machines)
* ``amqp://…``   → RabbitmqBroker
* empty          → StubBroker drained by an in-process worker (the embedded default)
* ``stub``       → StubBroker with no worker (tests join queues themselves)
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from app.settings import get_settings


def setup_broker() -> dramatiq.Broker:
    url = get_settings().broker_url
    broker: dramatiq.Broker
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    from app.observability import install

    install(broker)  # request ids into jobs' logs, job metrics (app/observability.py)
    dramatiq.set_broker(broker)
    return broker
