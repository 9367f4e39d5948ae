"""Rendering: the only place numbers become strings (Rich tables) or JSON documents.

``common`` holds the formatters and consoles; one module per command holds its views.
"""
