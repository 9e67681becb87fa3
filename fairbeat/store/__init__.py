"""Durable state: SQL models, migrations, and every SQL statement fairbeat runs.

Takes its engine as an argument; reads no configuration itself.
"""
