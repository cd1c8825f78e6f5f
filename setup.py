"""Build of the optional C speedups; everything else is configured in pyproject.toml.

``ledger._speedups`` links OpenSSL's libcrypto for SHA-256. It is optional: where it cannot
be built (no compiler or no OpenSSL headers, as in a slim Docker image) the install goes on
without it and the ledger core runs its pure-Python code, with identical results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ledger._speedups",
            sources=["ledger/_speedups.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
