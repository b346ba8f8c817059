"""The subcommands of ``python -m ci``: each module registers its parsers and handlers."""
