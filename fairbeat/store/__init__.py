"""Durable state: SQL models, migrations, job queries, run ledger.

Takes its engine as an argument; reads no configuration itself.
"""
