"""tfcli: transformer parameter, FLOP and KV-cache estimates, checked against real models.

This module imports only the standard library so that ``tfcli params`` starts fast.
"""

__version__ = "0.1.0"
