"""Variant effects: VCF records and sites (:mod:`.vcf`), ref/alt windows (:mod:`.windows`),
scores (:mod:`.scores`), scoring a VCF (:mod:`.effects`), its files (:mod:`.outputs`,
:mod:`.annotated`) and the ``--vep``/``--attribute`` command-line options (:mod:`.command`)."""
