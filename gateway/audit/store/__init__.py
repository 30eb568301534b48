"""Storage of the audit log.

``protocol`` (the :class:`~gateway.audit.store.protocol.AuditAppender` and
:class:`~gateway.audit.store.protocol.AuditReader` sides and the values they exchange),
``codec`` (a record's stored form), ``sql`` (the one SQL algorithm over a dialect),
``sqlite`` and ``postgres`` (the dialects), ``memory`` (the fake), ``open`` (the factory).
Import from the modules; this package imports nothing, so that reading the Protocol never
loads a database driver.
"""
