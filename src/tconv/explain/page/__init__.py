"""The page of ``tconv explain --html`` and ``tconv serve``: template.html, page.css, page.js.

Package data, read by :func:`tconv.html.render` and written inline into every page.
"""
