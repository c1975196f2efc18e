"""Reports for people: the self-contained HTML page of a run (report.html)."""

from pipeline_props.reports.collect import collect
from pipeline_props.reports.html import render_html, write_report

__all__ = ["collect", "render_html", "write_report"]
