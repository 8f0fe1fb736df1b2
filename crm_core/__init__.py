"""Kestrel CRM's core: models, rules, queries and services (no Streamlit, no web framework)."""

__version__ = "0.10.0"  # raised with each release; the API's /api/v1/status reports it
