"""The paper's tasks: a model and the data it trains on, registered by name."""
