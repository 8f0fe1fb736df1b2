"""Kestrel CRM's HTTP API (FastAPI), mounted by the host at ``/api`` (see ``server.py``).

It holds no business logic: routes call ``crm_core`` queries and services, as pages do, and
every error leaves as RFC 9457 ``application/problem+json``.
"""

from crm_api.app import create_api

__all__ = ["create_api"]
