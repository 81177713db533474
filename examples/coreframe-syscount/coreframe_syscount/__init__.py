"""An example coreframe plugin shipped as its own pip package."""
