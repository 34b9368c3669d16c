"""hone's built-in plugins, registered through the ``hone.plugins`` entry-point group."""
