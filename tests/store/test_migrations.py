from sqlalchemy import Engine, inspect

from fairbeat.store import migrate
from fairbeat.store.models import metadata


def test_the_schema_is_at_the_newest_revision(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_migrations_go_down_and_up_again(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    assert "job" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_the_due_index_exists(engine: Engine) -> None:
    names = {ix["name"] for ix in inspect(engine).get_indexes("job")}
    assert {"ix_job_due", "ix_job_status_run_at"} <= names
