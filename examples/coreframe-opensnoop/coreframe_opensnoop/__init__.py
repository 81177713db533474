"""An example coreframe plugin package: an event-streaming tool (opensnoop)."""
