"""Background work on Dramatiq. Importing this package configures the broker from the settings."""

from tasks.broker import setup_broker

broker = setup_broker()
