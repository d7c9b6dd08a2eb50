"""Catalog sources: the :class:`~oodflow.data.catalog.DatasetSpec` constants and their parsers."""
