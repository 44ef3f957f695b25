"""The driver: the loop that runs trials on Ray actors (``loop``), apart from its decisions
(``decisions``, ``emergency``), where trials may run (``placement``), its checkpoint
bookkeeping (``bookkeeping``) and Ray's private drain API (``drains``)."""
