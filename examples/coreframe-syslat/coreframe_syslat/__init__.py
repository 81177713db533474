"""An example coreframe plugin package: a map-polling tool (syslat)."""
