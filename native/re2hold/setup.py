"""
Build the extension against RE2 (Debian's libre2-dev, or RE2_PREFIX=/path/to/root).

RE2_PREFIX names a root holding ``usr/include/re2`` and ``usr/lib/<triplet>/libre2.so``
(scripts/build-re2hold.sh unpacks the Debian packages there without installing them); the
library directory is then also the extension's run path.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

include_dirs: list[str] = []
library_dirs: list[str] = []
runtime_dirs: list[str] = []
link_args: list[str] = []
prefix = os.environ.get("RE2_PREFIX")
if prefix:
    root = Path(prefix)
    include_dirs.append(str(root / "usr" / "include"))
    triplet = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    for lib in (root / "usr" / "lib" / triplet, root / "usr" / "lib"):
        if lib.is_dir():
            library_dirs.append(str(lib))
            runtime_dirs.append(str(lib))
    # DT_RPATH, not DT_RUNPATH: RUNPATH serves only this object's own dependencies, and
    # the unpacked libre2 needs it for its Abseil libraries (RE2 from 2023 on) as well.
    link_args.append("-Wl,--disable-new-dtags")

setup(
    ext_modules=[
        Extension(
            "otel_audit_re2hold",
            sources=["src/otel_audit_re2hold.cc"],
            include_dirs=include_dirs,
            library_dirs=library_dirs,
            runtime_library_dirs=runtime_dirs,
            libraries=["re2"],
            language="c++",
            extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden"],
            extra_link_args=link_args,
        )
    ],
)
