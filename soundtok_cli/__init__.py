"""soundtok: sound as learned tokens, as composable command-line utilities."""

__version__ = "0.1.0"
