
# ruff: noqa: UP031 - printf-style % formatting is the point: it spells the C formats
