"""The page of ``tconv explain --html`` and ``tconv serve``: the data of a spec's explanation
(:mod:`.builder`) written into template.html with page.js and page.css inline (package data)."""
from .builder import page_data, render, write

__all__ = ["page_data", "render", "write"]
