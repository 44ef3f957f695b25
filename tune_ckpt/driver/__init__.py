"""The driver: the loop that runs trials on Ray actors (``loop``), apart from its decisions
(``decisions``), where trials may run (``placement``) and its checkpoint bookkeeping
(``bookkeeping``)."""
