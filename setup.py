"""setuptools entry point: everything declarative lives in pyproject.toml; this file only wires
cffi's builder so that `pip install -e .` compiles csrc/ into logstore._native."""

from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
