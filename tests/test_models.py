import torch

from tasks.mnist.models import (
    MNIST_2NN_PARAMETERS,
    MNIST_CNN_PARAMETERS,
    Mnist2NN,
    MnistCNN,
    count_parameters,
)


def test_2nn_has_the_papers_199210_parameters() -> None:
    # The paper's 2NN: 784 -> 200 -> 200 -> 10, each layer with a bias.
    by_hand = (784 * 200 + 200) + (200 * 200 + 200) + (200 * 10 + 10)
    assert count_parameters(Mnist2NN()) == MNIST_2NN_PARAMETERS == by_hand == 199_210


def test_cnn_has_the_papers_1663370_parameters() -> None:
    # 5x5 conv 32, pool, 5x5 conv 64, pool (28 -> 14 -> 7), 512 fully connected, 10 outputs.
    by_hand = (
        (5 * 5 * 1 * 32 + 32) + (5 * 5 * 32 * 64 + 64) + (7 * 7 * 64 * 512 + 512) + (512 * 10 + 10)
    )
    assert count_parameters(MnistCNN()) == MNIST_CNN_PARAMETERS == by_hand == 1_663_370


def test_models_map_a_batch_of_images_to_ten_logits() -> None:
    images = torch.zeros(3, 28, 28)
    assert Mnist2NN()(images).shape == (3, 10)
    assert MnistCNN()(images).shape == (3, 10)
