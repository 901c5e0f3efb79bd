"""matplotlib figures. Every function returns a ``matplotlib.figure.Figure``; callers save it.

Figures are built with the object-oriented API (``Figure()``, no pyplot state), so they work
headless and in threads; saving through :func:`convlens.fileio.write_figure` picks Agg.
"""
