"""The ledger's Alembic environment (``env.py``) and revisions (``versions/``), shipped in the package.

Billcast runs them itself (``billcast.jobs.ledger.migrate``), configured in code:
no ``alembic.ini`` is needed at run time. ``alembic.ini`` here is for developers
writing a revision (docs/LEDGER.md, "Adding a migration").
"""
