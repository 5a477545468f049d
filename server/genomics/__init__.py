"""File-format code: coordinates, BGZF, and the BAM/CRAM/VCF/BCF indexes."""
