"""The Python process coreframe runs in: lean records, the user cache directory and
the start-up measures, shared by every layer."""
