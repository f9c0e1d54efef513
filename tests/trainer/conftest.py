import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread: on a busy 2-core machine, two threads spin against each other and run 3x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
