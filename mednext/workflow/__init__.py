"""The Snakemake workflow's logic: the run grid, file layout and cluster resources, in tested Python.

The Snakefile and ``workflow/rules/*.smk`` only wire rules to these functions and to the CLI.
"""
