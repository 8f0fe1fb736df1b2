"""The customer pool (公海): unowned customers of the user's teams to claim within the caps; managers assign,
admins set the rules. Rendered by :mod:`crm_ui.pool`."""

from crm_ui.pool import page

page()
