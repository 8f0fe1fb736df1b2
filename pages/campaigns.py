"""Campaigns (managers and admins; analysts read): campaigns with their members, the campaign form, the
step editor with the live-edit effect, the dry run as a funnel, launch/pause/resume/stop, the members."""

from __future__ import annotations

from crm_ui.campaigns import render

render()
