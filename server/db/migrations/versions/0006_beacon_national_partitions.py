"""beacon: variant records partitioned by chromosome (PostgreSQL)

Revision ID: 0006_beacon_national_partitions
Revises: 0005_beacon_national

On PostgreSQL ``beacon_variants`` becomes a table partitioned by LIST on
``chrom``: one partition per primary chromosome (``beacon_variants_chr1`` ..
``_chr22``, ``_chrX``, ``_chrY``, ``_chrMT``) and a default partition for any
other contig. A partition can then be detached and attached again as a
``postgres_fdw`` foreign table on another server (``docs/scaling.md``).

The partitioned table has no primary key or unique index (a foreign partition
cannot have one): each local partition gets its own unique index on ``pk``,
and pks are unique by construction (load id and record ordinal). SQLite keeps
the plain table.
"""

from alembic import op

revision = "0006_beacon_national_partitions"
down_revision = "0005_beacon_national"
branch_labels = None
depends_on = None

CHROMS = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]
INDEXES = {
    "ix_beacon_variants_locus": "(chrom, start, load_id)",
    "ix_beacon_variants_hgvs": "(hgvs_g)",
    "ix_beacon_variants_allele": "(load_id, chrom, start, ref)",
    "ix_beacon_variants_load_id": "(load_id)",
}


def partition_name(chrom: str | None) -> str:
    return "beacon_variants_other" if chrom is None else f"beacon_variants_chr{chrom}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE beacon_variants RENAME TO beacon_variants_flat")
    for name in INDEXES:
        op.execute(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}_flat")
    op.execute(
        "CREATE TABLE beacon_variants (LIKE beacon_variants_flat INCLUDING DEFAULTS) "
        "PARTITION BY LIST (chrom)"
    )
    for chrom in CHROMS:
        op.execute(
            f"CREATE TABLE {partition_name(chrom)} PARTITION OF beacon_variants "
            f"FOR VALUES IN ('{chrom}')"
        )
    op.execute(f"CREATE TABLE {partition_name(None)} PARTITION OF beacon_variants DEFAULT")
    for chrom in [*CHROMS, None]:
        part = partition_name(chrom)
        op.execute(f"CREATE UNIQUE INDEX {part}_pk ON {part} (pk)")
    op.execute("INSERT INTO beacon_variants SELECT * FROM beacon_variants_flat")
    op.execute("DROP TABLE beacon_variants_flat")
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON beacon_variants {columns}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE beacon_variants_flat (LIKE beacon_variants INCLUDING DEFAULTS)")
    op.execute("INSERT INTO beacon_variants_flat SELECT * FROM beacon_variants")
    op.execute("DROP TABLE beacon_variants")
    op.execute("ALTER TABLE beacon_variants_flat RENAME TO beacon_variants")
    op.execute("ALTER TABLE beacon_variants ADD PRIMARY KEY (pk)")
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON beacon_variants {columns}")
