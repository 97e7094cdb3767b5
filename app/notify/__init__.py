"""Notifications: the in-app centre plus e-mail, SMS and webhook through a transactional outbox.

``services.notify_many`` writes, in the caller's transaction, the in-app ``Notification`` rows and
one ``OutboxMessage`` per external channel; ``relay.relay`` hands due outbox rows to the
``deliver`` actor after they are committed; ``relay.deliver`` sends one row exactly once per
successful send (see docs/architecture.md, "Notifications").
"""
