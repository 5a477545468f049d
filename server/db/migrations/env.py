from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always run through server.db.migrate
    raise RuntimeError("run migrations with `genomeport db upgrade`")
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
