"""Customers: the server-side filtered, sorted, keyset-paged grid; saved views; bulk actions;
export of the current filter; and the create form with the duplicate check.

Rendered by :mod:`crm_ui.customers_grid`: a short script parses fast on every rerun.
"""

from crm_ui.customers_grid import page

page()
