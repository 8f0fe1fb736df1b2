"""Tables of the pipeline area (see docs/ARCHITECTURE.md); every business table is TenantScoped."""

from __future__ import annotations
