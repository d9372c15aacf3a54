"""Phased genotypes for local ancestry: the HDF5 format, VCF reading, alignment, admixture."""
