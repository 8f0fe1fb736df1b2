"""Campaign results (admins, managers, analysts): per step, influenced deals and won revenue under each
attribution model, charts and CSV. Rendered by :mod:`crm_ui.campaign_results`."""

from crm_ui.campaign_results import page

page()
