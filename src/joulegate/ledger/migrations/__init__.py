"""Alembic scripts for the ledger; a package so that installs ship them."""
