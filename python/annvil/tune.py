"""annvil: tune (see its module docstring once implemented)."""
__all__ = []
