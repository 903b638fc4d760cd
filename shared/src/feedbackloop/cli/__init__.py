"""The ``feedbackloop`` operator command: ``run``, ``tail``, ``keys``, ``replay``, ``migrate``, ``schemas``, ``dlq``."""
