"""Reports with charts: a run's (``oplab report RUN``) and a campaign's (``oplab eval report ID``).

Pure functions from folded data to a :class:`~oplab.reports.document.Document` (run_report,
campaign_report) and from data to PNG charts (charts); the renderers turn a document into one
self-contained HTML page (html: inline CSS, charts as data URIs) or into Markdown with its PNGs
beside it (markdown). Reading the log (reading) and writing files happen at the edge, in the CLI.
"""
