"""Notification's use cases, one module each: load what the use case needs, call the domain, apply the result.

* :mod:`~notification.service.routing`   — an event to deliveries (runs in the caller's unit of work);
* :mod:`~notification.service.routing_batch` — the events of a consumer batch to deliveries: one set of reads,
  the same decision per event, the writes at the batch's commit;
* :mod:`~notification.service.attempts`  — the delivery worker's claim and the record of attempts (in batches);
* :mod:`~notification.service.deliveries` — the delivery log: list, read, retry, resume a paused channel;
* :mod:`~notification.service.rules` and :mod:`~notification.service.teams` — managing rules and teams;
* :mod:`~notification.service.rules_file` — the YAML rules file applied at start;
* :mod:`~notification.service.erasure`   — erasure requests (``privacy.v1``).

Each use case that writes opens a unit of work (or runs in the caller's), and commits what it changed in one
transaction; reads use a read-only session.
"""
