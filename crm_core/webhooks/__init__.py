"""Webhooks: events from the audit trail, delivered signed (Standard Webhooks) by the job queue.

``outbox`` turns audited changes into events and deliveries in the same transaction;
``payloads`` builds the JSON bodies; ``sending`` signs and POSTs one delivery to a vetted
address; ``dispatch`` claims due deliveries (a conditional UPDATE), sends them and records
each attempt; ``jobs`` registers the ``webhook_dispatch`` job kind. See
docs/decisions/0016-webhooks-outbox.md.
"""
