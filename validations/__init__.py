"""Great Expectations suites, one module per dataset; run them with ``crm_core.validation.run_suite``.

Each module exposes ``expectations() -> list[gx.expectations.Expectation]`` and imports GX
inside that function only (GX costs about 3 s to import).
"""
