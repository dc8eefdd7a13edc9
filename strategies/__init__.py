"""The paper's FederatedAveraging as a Flower Strategy, and its pure parts.

``from strategies import FederatedAveraging`` is the documented import.
"""

from strategies.fedavg import FederatedAveraging

__all__ = ["FederatedAveraging"]
