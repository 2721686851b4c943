"""The local web UI (``gittrack ui``): a Starlette app serving a JSON API and static pages.

It reads the tracking repository only through ``gittrack.Client`` (DESIGN §7), so it holds no
logic of its own beyond shaping JSON and checking requests (``security``).
"""
