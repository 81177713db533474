"""``python -m coreframe.cli``: the same as the ``coreframe`` console script."""

from .entry import main

main()
