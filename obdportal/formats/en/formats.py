"""Dates as the portal writes them: 27 Nov 2026, 12:51:04 IST (24-hour, with seconds, and the
zone's abbreviation: people in several zones read the same pages, each in their own zone)."""

DATETIME_FORMAT = "j M Y, H:i:s T"
SHORT_DATETIME_FORMAT = "j M, H:i:s T"
DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i:s"
