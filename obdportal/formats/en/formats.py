"""Dates as the portal writes them: 27 Nov 2026, 12:51:04 (24-hour, with seconds)."""

DATETIME_FORMAT = "j M Y, H:i:s"
SHORT_DATETIME_FORMAT = "j M H:i:s"
DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i:s"
