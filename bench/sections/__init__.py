"""Benchmark sections: one module each, registered with bench._section.section; run.py imports
every module of this package."""
