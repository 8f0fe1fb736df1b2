"""Customer 360: one customer's key facts, timeline, quick actions and records (``?customer_id=``).

Rendered by :mod:`crm_ui.customer_profile`: a short script parses fast on every rerun.
"""

from crm_ui.customer_profile import page

page()
