"""The story of a spec as data (:mod:`.story`, :mod:`.animation`) and its renderers
(:mod:`.drawing` for PNG and GIF; the terminal in :mod:`tconv.cli.explain`)."""
