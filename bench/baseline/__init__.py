"""The baseline for bench/webhook_load.py: the least a Django view can do to store one delivery."""
