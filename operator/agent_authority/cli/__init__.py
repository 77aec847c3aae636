"""The ``agent-authority`` command (also ``kubectl agent``): one module per command group."""
