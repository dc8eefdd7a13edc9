import torch

from tasks.mnist.models import (
    MNIST_2NN_PARAMETERS,
    MNIST_CNN_PARAMETERS,
    Mnist2NN,
    MnistCNN,
    count_parameters,
)


def test_2nn_has_the_papers_199210_parameters() -> None:
    assert MNIST_2NN_PARAMETERS == 199_210
    assert count_parameters(Mnist2NN()) == 199_210


def test_cnn_has_the_papers_1663370_parameters() -> None:
    assert MNIST_CNN_PARAMETERS == 1_663_370
    assert count_parameters(MnistCNN()) == 1_663_370


def test_models_map_a_batch_of_images_to_ten_logits() -> None:
    images = torch.zeros(3, 28, 28)
    assert Mnist2NN()(images).shape == (3, 10)
    assert MnistCNN()(images).shape == (3, 10)
