"""`voxedge serve` (the `server` extra): one loaded model served to many clients at once.

    adapter.py         the only module that calls the model (load, files, live streams, model listing)
    live.py            per-client bounded audio rings and the shared worker threads (fairness, drops)
    pcm.py             PCM bytes from the wire -> mono float32
    wyoming.py         Home Assistant's Wyoming protocol over TCP
    http.py            the aiohttp application: routes, token check
    transcriptions.py  OpenAI-compatible /v1/audio/transcriptions and /v1/models
    websocket.py       the live WebSocket /v1/live
    page/              the live-captions page at /
    auth.py            who may connect; replies.py  error bodies; server.py  the process: config, start, stop

docs/server.md documents the protocols.
"""
