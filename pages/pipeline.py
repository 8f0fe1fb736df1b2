"""Pipeline board: a column per stage with drag and drop, the deal panel and a CSV export.

Rendered by :func:`crm_ui.pipeline_board.page` (a short script: Streamlit re-parses it on every rerun).
"""

from crm_ui.pipeline_board import page

page()
