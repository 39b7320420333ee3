"""Subcommands of the ``gasgnn`` command, one module each (see :mod:`gasgnn.cli`)."""
