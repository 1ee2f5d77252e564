"""Build logstore._native from csrc/ with cffi in API mode.

csrc/logstore.h is the only cdef: it is read here verbatim and also included by the C sources, so
the prototypes cffi checks are the ones the compiler compiles. Run through setup.py's
cffi_modules (pip install -e .) or directly: python csrc/build_ffi.py.

Environment:
    LOGSTORE_SANITIZE=1  build with AddressSanitizer and UndefinedBehaviorSanitizer (make test-asan)
    LOGSTORE_WERROR=1    turn warnings into errors (CI)
"""

import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = sorted(str(p.relative_to(HERE.parent)) for p in HERE.glob("*.c"))
WARNINGS = ["-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes"]


def _compile_args():
    args = ["-std=c11", "-O3", "-D_GNU_SOURCE", *WARNINGS]
    if os.environ.get("LOGSTORE_WERROR"):
        args.append("-Werror")
    if os.environ.get("LOGSTORE_SANITIZE"):
        args += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                 "-fno-sanitize-recover=undefined"]
    return args


def _link_args():
    if os.environ.get("LOGSTORE_SANITIZE"):
        return ["-fsanitize=address,undefined"]
    return []


ffibuilder = FFI()
ffibuilder.cdef((HERE / "logstore.h").read_text())
ffibuilder.set_source(
    "logstore._native",
    "#include <stdint.h>\n#include <stddef.h>\n#include \"logstore.h\"\n",
    sources=SOURCES,
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=_compile_args(),
    extra_link_args=_link_args(),
    # pyobjects.c reads bytes objects through CPython's non-limited API (PyBytes_AS_STRING,
    # PySequence_Fast_ITEMS), so the module is built for this interpreter, not as abi3.
    py_limited_api=False,
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=True)
