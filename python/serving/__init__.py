"""The embedded model server's parts; python/model_server.py is the entry point and says how they fit."""
