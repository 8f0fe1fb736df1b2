"""Background jobs: long work (imports, checks, refreshes, migrations …) runs in a worker, never in a page.

``service`` submits, cancels and retries; ``runner`` runs one job in a worker; ``context``
holds what a job sees and the table of kinds (registered in ``kinds``); ``queue`` is Huey;
``schedules`` are the admins' periodic jobs. See docs/decisions/0014-jobs-on-huey.md.
"""
