"""Variant effects: VCF sites (:mod:`.vcf`), ref/alt windows (:mod:`.windows`), scoring
(:mod:`.effects`) and the ``--vep``/``--attribute`` command-line options (:mod:`.command`)."""
