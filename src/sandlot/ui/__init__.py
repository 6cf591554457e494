"""The browser playground's files: the page, its ES modules and styles, and the vendored libraries (``vendor/``,
with ``VERSIONS.json`` and ``THIRD_PARTY_LICENSES.txt``). Served by ``sandlot.server.routes_ui``; no Python here.

The modules, one concept each: ``app.js`` wires the page; ``api.js`` calls the HTTP API with the key;
``sse.js`` parses event streams; ``outputs.js`` renders nbformat outputs (the trust boundary: everything it shows is
hostile); ``markdown.js`` renders sanitised Markdown; ``editor.js`` makes the code editor; ``notebook.js``,
``chat.js``, ``files.js``, ``sessions.js`` and ``header.js`` are the panes; ``dom.js`` and ``trusted.js`` are
helpers. See docs/ui.md.
"""
