"""MNIST digit classification: the paper's 2NN and CNN."""
