"""Ledger schema revisions, applied in order by joulegate.ledger.migrate.upgrade."""
